"""docker-compose.yml can't run here (no Docker engine): check what it declares."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_are_postgres_worker_app_and_a_one_shot_migrate():
    services = load()["services"]
    assert {"postgres", "worker", "app"} <= set(services)
    assert services["migrate"]["command"] == ["iosignal", "migrate"]
    for name in ("worker", "app"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"


def test_only_the_worker_gets_dev_kvm_and_nothing_is_privileged():
    services = load()["services"]
    assert services["worker"]["devices"] == ["/dev/kvm"]
    for name, svc in services.items():
        assert not svc.get("privileged", False), name
        if name != "worker":
            assert "devices" not in svc, name


def test_app_and_worker_share_one_image_built_from_the_dockerfile():
    services = load()["services"]
    assert (ROOT / "Dockerfile").is_file()
    images = {services[n]["image"] for n in ("app", "worker", "migrate", "observer")}
    assert len(images) == 1
    assert all(services[n]["build"] == "." for n in ("app", "worker", "migrate", "observer"))
    assert "COPY observer ./observer" in (ROOT / "Dockerfile").read_text()
    assert services["worker"]["command"] == ["iosignal", "worker"]
    assert services["app"]["command"][:2] == ["iosignal", "api"]


def test_app_is_published_on_8000_and_everyone_points_at_postgres():
    services = load()["services"]
    assert "8000:8000" in services["app"]["ports"]
    for name in ("app", "worker", "migrate", "observer"):
        url = services[name]["environment"]["IOSIGNAL_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url, name
    pg = services["postgres"]["environment"]
    assert f"{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@" in url


def test_the_open_listener_is_given_a_token():
    app_env = load()["services"]["app"]["environment"]
    assert "IOSIGNAL_ADMIN_TOKEN" in app_env


def test_the_observer_sees_the_host_with_only_the_capabilities_ebpf_needs():
    obs = load()["services"]["observer"]
    assert obs["command"] == ["iosignal", "observe"]
    assert obs["pid"] == "host"  # VMM pids and fds of the host, as the BPF counts see them
    assert set(obs["cap_add"]) == {"BPF", "PERFMON", "SYS_PTRACE"}
    assert "devices" not in obs and not obs.get("privileged", False)
    mounts = {v.split(":")[1]: v.split(":")[2] for v in obs["volumes"]}
    assert mounts == {"/sys/kernel/tracing": "ro", "/sys/kernel/debug": "ro"}
    assert obs["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
