// The registration and workload rules, checked in the browser with the same wording as the API,
// so a person sees the rule before the round trip. The server checks again and has the last word.

const U64_MAX = (1n << 64n) - 1n;
export const LENS = [0, 1, 2, 4, 8];

/** Parses "0x6000", "24576" or a number into a BigInt; null for blank; throws on garbage. */
export function parseInt64(text, field) {
  const s = String(text ?? "").trim();
  if (s === "") return null;
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(s)) throw new Error(`${field} must be an integer or 0x... hex`);
  const v = BigInt(s);
  if (v > U64_MAX) throw new Error(`${field} must fit in 64 bits`);
  return v;
}

/** JSON-safe form of a BigInt: a number when exact, else a "0x..." string (the API takes both). */
export function toJson(v) {
  if (v === null) return null;
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : "0x" + v.toString(16);
}

/** The rules of one address: {space, addr, len} -> list of error strings. */
// The messages are the API's own (app/core/rules.py), so both checks read the same.
function addressRules(space, addr, len) {
  const errors = [];
  if (space !== "pio" && space !== "mmio") errors.push("space must be pio or mmio");
  if (!LENS.includes(len)) errors.push("len must be one of 0, 1, 2, 4, 8");
  if (addr === null) return errors;
  const end = addr + BigInt(LENS.includes(len) ? len : 0);
  if (end > U64_MAX + 1n) errors.push("addr + len must not wrap past the end of the address space");
  if (space === "pio" && addr > 0xffffn) errors.push("PIO addr must be at most 0xffff");
  else if (space === "pio" && len === 8) errors.push("PIO len 8 is impossible: port writes are at most 4 bytes");
  return errors;
}

function fits(value, len) {
  return len >= 8 || value < 1n << BigInt(8 * len);
}

/**
 * Checks a registration form {space, addr, len, datamatch, label} against the API's rules and the
 * existing registrations (the kernel's collision rule). Returns {errors, body}.
 */
export function checkRegistration(form, existing = []) {
  const errors = [];
  let addr = null;
  let datamatch = null;
  const len = Number(form.len);
  try {
    addr = parseInt64(form.addr, "addr");
    if (addr === null) errors.push("addr is required");
  } catch (e) {
    errors.push(e.message);
  }
  try {
    datamatch = parseInt64(form.datamatch, "datamatch");
  } catch (e) {
    errors.push(e.message);
  }
  errors.push(...addressRules(form.space, addr, len));
  if (len === 0 && datamatch !== null) errors.push("len 0 (any width) cannot be combined with datamatch");
  if (datamatch !== null && len > 0 && !fits(datamatch, len)) {
    errors.push(`datamatch 0x${datamatch.toString(16)} is wider than len ${len} bytes`);
  }
  if (!errors.length) {
    const clash = existing.find((r) => collides(r, form.space, addr, len, datamatch));
    if (clash) {
      errors.push(`EEXIST: collides with registration ${clash.id} (${clash.space} 0x${BigInt(clash.addr).toString(16)} ` +
        `len ${clash.len}, ${clash.state}): the kernel refuses the same address with width 0 on either side, ` +
        "or the same width with a wildcard or equal datamatch");
    }
  }
  const body = { space: form.space, addr: toJson(addr), len, datamatch: toJson(datamatch) };
  if (form.label && form.label.trim()) body.label = form.label.trim();
  return { errors, body };
}

/** The kernel's rule: same bus+addr and (len 0 either side, or same len and wildcard/equal match). */
function collides(reg, space, addr, len, datamatch) {
  if (!["pending", "active", "removing"].includes(reg.state)) return false;
  if (reg.space !== space || BigInt(reg.addr) !== addr) return false;
  if (reg.len === 0 || len === 0) return true;
  if (reg.len !== len) return false;
  const theirs = reg.datamatch === null || reg.datamatch === undefined ? null : BigInt(reg.datamatch);
  return theirs === null || datamatch === null || theirs === datamatch;
}

/** The API's workload limits (GET .../workload says them; these are its defaults). */
export const LIMITS = { max_doorbells: 16, max_doorbell_rate_hz: 100000, max_total_rate_hz: 200000 };

/** Checks one workload doorbell {space, addr, len, value, rate_hz}; returns {errors, body}. */
export function checkDoorbell(row, index, limits = LIMITS) {
  const errors = [];
  const where = `doorbell ${index + 1}`;
  let addr = null;
  let value = 0n;
  const len = Number(row.len);
  try {
    addr = parseInt64(row.addr, "addr");
    if (addr === null) errors.push("addr is required");
  } catch (e) {
    errors.push(e.message);
  }
  try {
    value = parseInt64(row.value, "value") ?? 0n;
  } catch (e) {
    errors.push(e.message);
  }
  if (![1, 2, 4, 8].includes(len)) errors.push("doorbell len must be one of 1, 2, 4, 8");
  else errors.push(...addressRules(row.space, addr, len));
  if ([1, 2, 4, 8].includes(len) && !fits(value, len)) errors.push(`value 0x${value.toString(16)} is wider than len ${len} bytes`);
  const rateHz = Number(row.rate_hz);
  const max = limits.max_doorbell_rate_hz;
  if (String(row.rate_hz).trim() === "" || !Number.isFinite(rateHz) || rateHz <= 0 || rateHz > max) {
    errors.push(`rate_hz must be greater than 0 and at most ${max}`);
  }
  const body = { space: row.space, addr: toJson(addr), len, value: toJson(value), rate_hz: rateHz };
  return { errors: errors.map((e) => `${where}: ${e}`), body };
}
