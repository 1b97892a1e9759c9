// The registration and workload rules, checked in the browser so a person sees the rule before
// the round trip. The numbers are the server's (GET /api/rules, from contract/rules.py) and so is
// the wording of each message; the server checks again and has the last word.

const hex = (v) => "0x" + BigInt(v).toString(16);

/** Parses "0x6000", "24576" or a number into a BigInt; null for blank; throws the rule broken. */
function parseU64(text, field, rules) {
  const s = String(text ?? "").trim();
  if (s === "") return null;
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(s)) throw new Error(`${field} must be an integer or a "0x..." string`);
  const v = BigInt(s);
  if (v > BigInt(rules.u64_max)) throw new Error(`${field} must be between 0 and ${hex(rules.u64_max)}`);
  return v;
}

/** Parses each of `fields` of `form`; a field that is not a u64 (or blank and required) is an error. */
function parseFields(form, fields, rules, errors) {
  const out = {};
  for (const [field, required] of fields) {
    try {
      out[field] = parseU64(form[field], field, rules);
      if (out[field] === null && required) errors.push(`${field} is required`);
    } catch (e) {
      errors.push(e.message);
    }
  }
  return out;
}

/** JSON-safe form of a BigInt: a number when exact, else a "0x..." string (the API takes both). */
function toJson(v) {
  if (v === null || v === undefined) return null;
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : hex(v);
}

const fits = (value, len) => len >= 8 || value < 1n << BigInt(8 * len);

/** contract.rules.registration_problem, after the len/space checks the form's selects make. */
function addressProblem(rules, space, addr, len) {
  const portLens = rules.write_lens.pio;
  if (addr + BigInt(len) > BigInt(rules.u64_max) + 1n) {
    return "addr + len must not wrap past the end of the address space";
  }
  if (space === "pio" && addr > BigInt(rules.pio_max)) return `PIO addr must be at most ${hex(rules.pio_max)}`;
  if (space === "pio" && len && !portLens.includes(len)) {
    return `PIO len ${len} is impossible: a port write's len must be one of ${portLens.join(", ")}`;
  }
  return null;
}

function registrationProblem(rules, { space, addr, len, datamatch }) {
  if (len === 0 && datamatch !== null) return "len 0 (any width) cannot be combined with datamatch";
  const problem = addressProblem(rules, space, addr, len);
  if (problem) return problem;
  if (datamatch !== null && len && !fits(datamatch, len)) {
    return `datamatch ${hex(datamatch)} is wider than len ${len} bytes`;
  }
  return null;
}

/** contract.rules.describe: `pio 0x6000 len 4 datamatch any`. */
function describe({ space, addr, len, datamatch }) {
  return `${space} ${hex(addr)} len ${len} datamatch ${datamatch === null ? "any" : hex(datamatch)}`;
}

/** contract.rules.guest_problem: the guest's pass-done port, or MMIO inside its `memSize` of RAM. */
function guestProblem(rules, memSize, space, addr) {
  if (space === "pio" && addr === BigInt(rules.control_port)) {
    return `PIO port ${hex(rules.control_port)} is the guest's pass-done port, kept by iosignal`;
  }
  if (space === "mmio" && addr < BigInt(memSize)) {
    return `MMIO addr ${hex(addr)} is inside guest RAM [0, ${hex(memSize)}): writes there never exit, ` +
      "so it can never fire";
  }
  return null;
}

/**
 * The kernel's collision rule (contract.rules.collides) between `old` and `reg`, for an `old` the
 * kernel holds or is about to hold (rules.live_states).
 */
function collides(rules, old, reg) {
  if (!rules.live_states.includes(old.state) || old.space !== reg.space || BigInt(old.addr) !== reg.addr) {
    return false;
  }
  if (old.len === 0 || reg.len === 0) return true;
  if (old.len !== reg.len) return false;
  return old.datamatch === null || reg.datamatch === null || BigInt(old.datamatch) === reg.datamatch;
}

/**
 * Checks a registration form {space, addr, len, datamatch, label} against the rules, the guest
 * (a VM with `memSize` of RAM) and the existing registrations (the kernel's collision rule).
 * Returns {errors, body}.
 */
export function checkRegistration(form, existing, rules, memSize) {
  const errors = [];
  const { addr, datamatch } = parseFields(form, [["addr", true], ["datamatch", false]], rules, errors);
  const reg = { space: form.space, addr, len: Number(form.len), datamatch: datamatch ?? null };
  const problem = !errors.length && (registrationProblem(rules, reg) || guestProblem(rules, memSize, reg.space, addr));
  if (problem) errors.push(problem);
  const clash = !errors.length && existing.find((old) => collides(rules, old, reg));
  if (clash) {
    errors.push(`${describe(reg)} collides with registration ${clash.id} (${describe(clash)}, ${clash.state}): ` +
      `${rules.collision_rule}; the kernel refuses this with EEXIST`);
  }
  const body = { space: reg.space, addr: toJson(addr), len: reg.len, datamatch: toJson(reg.datamatch) };
  if (form.label && form.label.trim()) body.label = form.label.trim();
  return { errors, body };
}

/** contract.rules.doorbell_problem: a write the guest can perform, on a VM with `memSize` of RAM. */
function doorbellProblem(rules, memSize, { space, addr, len, value }) {
  const problem = addressProblem(rules, space, addr, len);
  if (problem) return problem;
  if (!fits(value, len)) return `value ${hex(value)} is wider than len ${len} bytes`;
  for (const [first, last] of rules.irqchip?.[space] ?? []) {
    if (addr <= BigInt(last) && addr + BigInt(len) - 1n >= BigInt(first)) {
      return `${space.toUpperCase()} ${hex(first)}-${hex(last)} belongs to KVM's in-kernel interrupt ` +
        "controller: writes there never reach a doorbell";
    }
  }
  if (space === "pio") return guestProblem(rules, memSize, space, addr);
  if (space === "mmio" && (addr < BigInt(memSize) || addr + BigInt(len) > BigInt(rules.mapped_limit))) {
    return `MMIO address must be outside guest RAM [0, ${hex(memSize)}) and below ` +
      `${rules.mapped_limit / 2 ** 30} GiB (got ${hex(addr)})`;
  }
  return null;
}

/** contract.rules.rate_problem: the floor (a silent doorbell) and ceilings of a doorbell's rate. */
function rateProblem(rules, rateHz, answered) {
  const [min, max] = [rules.min_doorbell_rate_hz, rules.max_doorbell_rate_hz];
  if (!(Number.isFinite(rateHz) && min <= rateHz && rateHz <= max)) {
    return `rate_hz must be between ${min} and ${max} (got ${rateHz})`;
  }
  if (answered && rateHz > rules.max_answered_rate_hz) {
    return `an answered doorbell's rate_hz must be at most ${rules.max_answered_rate_hz}: ` +
      `each write waits for the device's interrupt (got ${rateHz})`;
  }
  return null;
}

/** Checks one doorbell row {space, addr, len, value, rate_hz, answered}; returns {errors, body}. */
function checkDoorbell(row, index, rules, memSize) {
  const errors = [];
  const { addr, value } = parseFields(row, [["addr", true], ["value", false]], rules, errors);
  const bell = { space: row.space, addr, len: Number(row.len), value: value ?? 0n };
  const problem = !errors.length && doorbellProblem(rules, memSize, bell);
  if (problem) errors.push(problem);
  const blank = String(row.rate_hz ?? "").trim() === "";
  const rateHz = Number(row.rate_hz);
  const answered = row.answered === true;
  const rateRule = blank ? "rate_hz is required" : rateProblem(rules, rateHz, answered);
  if (rateRule) errors.push(rateRule);
  const body = { ...bell, addr: toJson(addr), value: toJson(bell.value), rate_hz: rateHz,
    ...(answered ? { answered: true } : {}) };
  return { errors: errors.map((e) => `doorbell ${index + 1}: ${e}`), body };
}

/** Checks a workload's rows (each doorbell, their count and total rate); returns {errors, doorbells}. */
export function checkWorkload(rows, rules, memSize) {
  const checked = rows.map((row, i) => checkDoorbell(row, i, rules, memSize));
  const errors = checked.flatMap((c) => c.errors);
  const doorbells = checked.map((c) => c.body);
  if (rows.length > rules.max_doorbells) {
    errors.push(`a workload has at most ${rules.max_doorbells} doorbells (got ${rows.length})`);
  }
  if (doorbells.reduce((sum, d) => sum + (d.rate_hz || 0), 0) > rules.max_total_rate_hz) {
    errors.push(`the doorbells' rate_hz must add up to at most ${rules.max_total_rate_hz}`);
  }
  return { errors, doorbells };
}
