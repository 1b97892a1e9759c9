"""The dashboard against the real app with its worker away: every page renders with sensible
empty states, the registration form's rules and the server's verdicts show, tokens gate writes."""

from __future__ import annotations

import pytest
from dashboard_harness import add_offline_vm, add_token, insert, screenshot, start_app
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PAGES = ["live", "registrations", "history", "workload", "benchmarks"]


def test_every_page_renders_and_says_the_worker_is_away(app_only, page):
    add_offline_vm(app_only)
    page.goto(app_only.url + "/#/live")
    expect(page.locator("#worker-badge")).to_have_text("worker not alive")
    expect(page.locator("#vm-select")).to_have_value("1")
    for name in PAGES:
        page.goto(f"{app_only.url}/#/{name}")
        expect(page.locator(f'nav a[data-page="{name}"]')).to_have_attribute("aria-current", "page")
        expect(page.locator("main h1")).to_contain_text(name.capitalize())
        page.wait_for_load_state("networkidle")
        screenshot(page, f"offline-{name}")
    expect(page.locator("#runs-empty")).to_contain_text("No benchmark runs yet")


def test_no_vm_yet_is_an_empty_state_not_an_error(app_only, page):
    page.goto(app_only.url + "/")
    # the first empty state: the overview's panels add theirs ("Nothing to draw") once drawn
    expect(page.locator("main .empty").first).to_contain_text("No VM yet")
    expect(page.locator("#worker-badge")).to_have_text("no worker yet")


def test_registration_form_shows_the_rules_then_the_servers_verdicts(app_only, page):
    vm = add_offline_vm(app_only)
    page.goto(app_only.url + "/#/registrations")
    form = page.locator("form.regform")
    errors = page.locator("section.card.write ul.errors")

    form.locator("[name=addr]").fill("0x10000")
    form.locator("[name=len]").select_option("2")
    form.locator("button[type=submit]").click()
    expect(errors).to_contain_text("PIO addr must be at most 0xffff")

    form.locator("[name=addr]").fill("0x6000")
    form.locator("[name=len]").select_option("0")
    form.locator("[name=datamatch]").fill("7")
    form.locator("button[type=submit]").click()
    expect(errors).to_contain_text("len 0 (any width) cannot be combined with datamatch")

    form.locator("[name=len]").select_option("1")
    form.locator("[name=datamatch]").fill("0x100")
    form.locator("button[type=submit]").click()
    expect(errors).to_contain_text("datamatch 0x100 is wider than len 1 bytes")

    # A valid one with the worker away: 202, kept as pending.
    form.locator("[name=datamatch]").fill("")
    form.locator("[name=label]").fill("tx queue")
    form.locator("button[type=submit]").click()
    expect(page.locator(".toast")).to_contain_text("pending")
    row = page.locator("#reg-table tbody tr").filter(has_text="tx queue")
    expect(row.locator(".state")).to_have_text("pending")

    # Registered behind the page's back: the page can't know, so the server's 409 is shown.
    status, _ = app_only.call(
        "POST", f"/api/vms/{vm}/ioeventfds", {"space": "mmio", "addr": "0xd0000000", "len": 4}
    )
    assert status == 202
    page.console_watch.allow("status of 409")
    form.locator("[name=space]").select_option("mmio")
    form.locator("[name=addr]").fill("0xd0000000")
    form.locator("[name=len]").select_option("0")
    form.locator("button[type=submit]").click()
    expect(errors).to_contain_text("EEXIST")
    expect(errors).to_contain_text("collides with registration")

    # Delete asks first; with the worker away it waits as removing.
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row.locator(".state")).to_have_text("removing")
    screenshot(page, "offline-registrations-verdicts")


def test_viewer_token_sees_no_write_buttons_and_editor_does(app_only, page):
    add_offline_vm(app_only)
    viewer = add_token(app_only, "v", "viewer")
    editor = add_token(app_only, "e", "editor")
    page.console_watch.allow("status of 401")
    page.goto(app_only.url + "/#/registrations")
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    screenshot(page, "token-prompt")
    dialog.locator("#token-input").fill("not-a-token")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#token-reason")).to_contain_text("not accepted")
    dialog.locator("#token-input").fill(viewer)
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("main .empty")).to_contain_text("No registrations here")
    expect(page.locator("form.regform")).to_be_hidden()
    expect(page.locator("#role-badge")).to_have_text("token: viewer")
    expect(page.locator("#stream-badge")).to_have_text("stream live")  # ?token= on the stream
    page.goto(app_only.url + "/#/benchmarks")
    expect(page.get_by_role("button", name="Start benchmark")).to_be_hidden()
    screenshot(page, "viewer-benchmarks")

    page.locator("#token-button").click()
    dialog.locator("#token-input").fill(editor)
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#role-badge")).to_have_text("token: editor")
    expect(page.get_by_role("button", name="Start benchmark")).to_be_visible()


def test_stream_badge_says_reconnecting_while_the_app_is_down(app_only, page):
    add_offline_vm(app_only)
    page.goto(app_only.url + "/#/live")
    badge = page.locator("#stream-badge")
    expect(badge).to_have_text("stream live")
    app = app_only.procs[0]
    app.terminate()
    app.wait(timeout=15)
    page.console_watch.allow("ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED")
    expect(badge).to_have_text("stream reconnecting…")
    expect(page.locator("#worker-badge")).to_have_text("API unreachable")
    screenshot(page, "stream-reconnecting")
    start_app(app_only)
    expect(badge).to_have_text("stream live", timeout=20_000)


def test_a_failed_registration_shows_the_kernels_errno(app_only, page):
    from contract.models import Ioeventfd

    vm = add_offline_vm(app_only)
    insert(
        app_only,
        Ioeventfd,
        vm_id=vm,
        space="mmio",
        addr=0xFEE00000,
        len=4,
        label="refused",
        state="failed",
        errno="EINVAL",
        error="the kernel refused the address (EINVAL)",
    )
    page.goto(app_only.url + "/#/registrations")
    row = page.locator("#reg-table tbody tr").filter(has_text="refused")
    expect(row.locator(".state")).to_have_text("failed: EINVAL")
    expect(row).to_contain_text("the kernel refused the address")


def _run(stack, host: str, kernel: str, scale: float) -> int:
    """A finished benchmark run from `host`, as that host's worker records it."""
    from contract.models import BenchmarkResult, BenchmarkRun, utcnow

    run = insert(
        stack,
        BenchmarkRun,
        state="done",
        progress=1.0,
        writes=1000,
        repeat=1,
        paths=[],
        host=host,
        kernel=kernel,
        created_at=utcnow(),
        finished_at=utcnow(),
    )
    for path, iops in (("userspace-mmio", 100_000), ("ioeventfd-mmio", 450_000)):
        rtt = 1e6 / (iops * scale)
        insert(
            stack,
            BenchmarkResult,
            run_id=run,
            path=path,
            writes=1000,
            iops=iops * scale,
            rtt_us=rtt,
            rtt_us_min=rtt * 0.9,
            rtt_us_max=rtt * 1.2,
            guest_rtt_us=rtt,
        )
    return run


def test_benchmark_runs_from_two_hosts_compare_side_by_side(app_only, page):
    old = _run(app_only, "oldhost", "5.10.0", 0.5)
    new = _run(app_only, "newhost", "6.1.0", 1.0)
    page.goto(app_only.url + "/#/benchmarks")
    names = "() => document.getElementById('chart-bench').data.map((t) => t.name)"
    expect(page.locator("table.bench-results")).to_have_count(1)  # the newest run, drawn alone
    page.get_by_label(f"compare #{old} oldhost · 5.10.0").check()
    expect(page.locator("table.bench-results")).to_have_count(2)
    drawn = page.evaluate(names)
    assert drawn == [f"#{new} newhost · 6.1.0", f"#{old} oldhost · 5.10.0", "2009 reference (seed)"]
    expect(page.locator("table.bench-results").last).to_contain_text("4.5\u00d7")  # speedup column
    screenshot(page, "benchmarks-compare")
    page.get_by_label("Host", exact=True).select_option("oldhost")
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)


def test_forms_check_with_the_served_rules(app_only, page):
    """The workload and benchmark forms take their numbers from GET /api/rules and the VM's RAM
    size from GET /api/vms, and refuse in the page (nothing is saved) with the rule's words."""
    from contract.models import Vm, utcnow

    status, rules = app_only.call("GET", "/api/rules")
    assert status == 200
    mem_size = 2 * rules["default_mem_size"]  # a VM bigger than the default: its size must count
    vm = insert(
        app_only,
        Vm,
        name="big",
        host="testhost",
        kernel="6.1.0-test",
        mem_size=mem_size,
        state="stopped",
        workload_version=0,
        created_at=utcnow(),
    )
    page.goto(app_only.url + "/#/workload")
    expect(page.locator("main .card .hint").last).to_contain_text(
        f"at most {rules['max_doorbells']:,} doorbells"
    )
    page.get_by_role("button", name="Add doorbell").click()
    row = page.locator("#workload-table tbody tr").last
    errors = page.locator("form ul.errors")
    over = rules["max_doorbell_rate_hz"] + 1
    row.locator("[name=rate_hz]").fill(f"{over:g}")
    page.get_by_role("button", name="Save workload").click()
    expect(errors).to_have_text(
        f"doorbell 1: rate_hz must be between {rules['min_doorbell_rate_hz']:g} and "
        f"{rules['max_doorbell_rate_hz']:g} (got {over:g})"
    )

    row.locator("[name=rate_hz]").fill("10")
    row.locator("[name=addr]").fill(hex(rules["control_port"]))
    page.get_by_role("button", name="Save workload").click()
    expect(errors).to_have_text(
        f"doorbell 1: PIO port {rules['control_port']:#x} is the guest's pass-done port, "
        "kept by iosignal"
    )

    inside = mem_size - 0x1000  # outside the default RAM, inside this VM's
    row.locator("[name=space]").select_option("mmio")
    row.locator("[name=addr]").fill(hex(inside))
    page.get_by_role("button", name="Save workload").click()
    expect(errors).to_have_text(
        f"doorbell 1: MMIO address must be outside guest RAM [0, {mem_size:#x}) and below 4 GiB "
        f"(got {inside:#x})"
    )
    assert app_only.call("GET", f"/api/vms/{vm}/workload")[1]["version"] == 0  # refused in the page
    screenshot(page, "workload-rules")

    page.goto(app_only.url + "/#/benchmarks")
    boxes = page.locator("fieldset.paths input[name=path]")
    expect(boxes).to_have_count(len(rules["bench_paths"]))
    assert boxes.evaluate_all("(els) => els.map((e) => e.value)") == list(rules["bench_paths"])
