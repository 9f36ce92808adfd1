"""Decision.sandbox → container run spec (pure, fast): what is granted, what is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cortex_trust.runtime._sandbox as sandbox_mod
from cortex_trust.errors import InputError, UnavailableError
from cortex_trust.policy import Decision
from cortex_trust.runtime import ContainerSpec, SandboxRefused, connect, container_spec

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example:5000/acme/hello:0.1.0@{DIGEST}"


def _sandbox(**over: Any) -> dict[str, Any]:
    box: dict[str, Any] = {"enabled": True, "network": False, "filesystem": False,
                           "read_only_root": True, "cap_drop": ["ALL"], "no_new_privileges": True,
                           "user": "65534:65534", "memory": "64m", "cpus": 0.5, "pids_limit": 64}
    box.update(over)
    return box


def _decision(*, action: str = "notice", sandbox: dict[str, Any] | None = None,
              overridable: bool = False) -> Decision:
    return Decision.model_validate({
        "tier": "community", "action": action,
        "reasons": [{"code": "TIER_COMMUNITY", "message": "ok"}],
        "sandbox": sandbox if sandbox is not None else _sandbox(),
        "next_tier": None, "overridable": overridable, "policy_revision": "rev-42",
    })


def _spec(decision: Decision | None = None, **kw: Any) -> ContainerSpec:
    args: dict[str, Any] = {"plugin": "hello", "version": "0.1.0", "image": IMAGE}
    args.update(kw)
    return container_spec(decision or _decision(), **args)


def test_public_surface() -> None:
    assert sorted(sandbox_mod.__all__) == sorted([
        "DATA_MOUNT", "LABEL_PREFIX", "ContainerSpec", "SandboxRefused", "container_name",
        "container_spec", "volume_name"])


def test_no_network_sandbox_spec() -> None:
    kw = _spec().to_run_kwargs()
    assert kw["network"] == "cortex-sandbox"
    assert kw["read_only"] is True
    assert kw["cap_drop"] == ["ALL"] and kw["cap_add"] == []
    assert kw["security_opt"][0] == "no-new-privileges" and len(kw["security_opt"]) == 2
    assert kw["security_opt"][1].startswith("seccomp={")
    assert kw["sysctls"] == {"net.ipv6.conf.all.disable_ipv6": "1",
                             "net.ipv6.conf.default.disable_ipv6": "1"}
    assert kw["privileged"] is False
    assert kw["user"] == "65534:65534"
    assert kw["mem_limit"] == "64m" and kw["memswap_limit"] == "64m"
    assert kw["nano_cpus"] == 500_000_000
    assert kw["pids_limit"] == 64
    assert kw["ports"] == {} and kw["devices"] == [] and kw["environment"] == {}
    assert "volumes" not in kw and "mounts" not in kw
    assert set(kw["tmpfs"]) == {"/tmp", "/run", "/var/tmp"}
    assert all("noexec" in o and "nosuid" in o and "size=" in o for o in kw["tmpfs"].values())
    assert kw["name"] == "cortex-hello"
    assert kw["detach"] is True


def test_image_is_run_by_digest_not_tag() -> None:
    spec = _spec()
    assert spec.image == f"registry.example:5000/acme/hello@{DIGEST}"
    assert spec.digest == DIGEST


def test_labels_record_the_decision() -> None:
    labels = _spec().to_run_kwargs()["labels"]
    assert labels["io.cortex.managed"] == "true"
    assert labels["io.cortex.plugin.name"] == "hello"
    assert labels["io.cortex.plugin.version"] == "0.1.0"
    assert labels["io.cortex.plugin.digest"] == DIGEST
    assert labels["io.cortex.decision.policy_revision"] == "rev-42"
    assert labels["io.cortex.decision.tier"] == "community"
    assert labels["io.cortex.decision.overridden"] == "false"
    assert '"network":false' in labels["io.cortex.sandbox"]


def test_granted_network_and_filesystem() -> None:
    spec = _spec(_decision(sandbox=_sandbox(network=True, filesystem=True)),
                 egress_network="podman")
    kw = spec.to_run_kwargs()
    assert kw["network"] == "podman"
    # A granted filesystem is the plugin's own named volume, never a host path.
    assert kw["volumes"] == {"cortex-hello-data": {"bind": "/data", "mode": "rw"}}


def test_the_sandbox_is_passed_exactly() -> None:
    box = _sandbox(read_only_root=False, no_new_privileges=False, cap_drop=["NET_RAW"],
                   user="1000:1000", memory="1g", cpus=2, pids_limit=500)
    kw = _spec(_decision(sandbox=box)).to_run_kwargs()
    assert kw["read_only"] is False
    assert [o for o in kw["security_opt"] if not o.startswith("seccomp=")] == []
    assert kw["cap_drop"] == ["NET_RAW"] and kw["cap_add"] == []
    assert kw["user"] == "1000:1000" and kw["mem_limit"] == "1g"
    assert kw["nano_cpus"] == 2_000_000_000 and kw["pids_limit"] == 500


def test_a_block_is_refused() -> None:
    with pytest.raises(SandboxRefused, match="block") as e:
        _spec(_decision(action="block"))
    assert e.value.exit_code == 2 and e.value.advice


def test_an_overridden_block_runs_and_is_labelled() -> None:
    spec = _spec(_decision(action="block", overridable=True), unsafe_allow_blocked=True)
    assert dict(spec.labels)["io.cortex.decision.overridden"] == "true"


def test_the_fail_closed_decision_never_runs() -> None:
    failed = Decision.fail_closed("ENGINE_ERROR", "boom")
    for unsafe in (False, True):
        with pytest.raises(SandboxRefused, match="no sandbox"):
            _spec(failed, unsafe_allow_blocked=unsafe)


def test_a_disabled_sandbox_is_refused() -> None:
    with pytest.raises(SandboxRefused, match="never runs a plugin outside"):
        _spec(_decision(action="allow", sandbox=_sandbox(enabled=False)))


def test_not_a_decision_is_refused() -> None:
    with pytest.raises(SandboxRefused):
        container_spec(_sandbox(), plugin="hello", version="0.1.0", image=IMAGE)  # type: ignore[arg-type]


@pytest.mark.parametrize("image", [
    "registry.example/acme/hello:0.1.0",
    "registry.example/acme/hello",
    "acme/hello@" + DIGEST.replace("sha256", "sha512"),
    "hello@" + DIGEST,
    f"registry.example/acme/hello@{DIGEST} ",
    f"registry.example/Acme/hello@{DIGEST}",
    f"registry.example/acme/hello@sha256:{'AB' * 32}",
])
def test_unpinned_or_malformed_images_are_refused(image: str) -> None:
    with pytest.raises(InputError):
        _spec(image=image)


@pytest.mark.parametrize("plugin", ["", "Hello", "../etc", "a/b", "-x", "x-", "a" * 65, "/home"])
def test_bad_plugin_names_are_refused(plugin: str) -> None:
    with pytest.raises(InputError):
        _spec(plugin=plugin)


@pytest.mark.parametrize("net", ["host", "none", "container:abc", "", "a b", "../x"])
def test_dangerous_networks_are_refused(net: str) -> None:
    with pytest.raises(InputError):
        _spec(internal_network=net)
    with pytest.raises(InputError):
        _spec(egress_network=net)


@pytest.mark.parametrize("port", [0, 65536, -1, True])
def test_bad_ports_are_refused(port: Any) -> None:
    with pytest.raises(InputError):
        _spec(endpoints_port=port)


_sandboxes = st.fixed_dictionaries({
    "enabled": st.just(True),
    "network": st.booleans(),
    "filesystem": st.booleans(),
    "read_only_root": st.booleans(),
    "cap_drop": st.lists(st.sampled_from(["ALL", "NET_RAW", "CHOWN", "SYS_ADMIN"]), max_size=3),
    "no_new_privileges": st.booleans(),
    "user": st.tuples(st.integers(1, 2**31), st.integers(1, 2**31)).map(lambda t: f"{t[0]}:{t[1]}"),
    "memory": st.tuples(st.integers(1, 999), st.sampled_from("kmg")).map(lambda t: f"{t[0]}{t[1]}"),
    "cpus": st.floats(0.01, 64),
    "pids_limit": st.integers(1, 100_000),
})


@given(box=_sandboxes, action=st.sampled_from(["allow", "notice", "warn"]))
def test_property_spec_never_widens_the_sandbox(box: dict[str, Any], action: str) -> None:
    decision = _decision(action=action, sandbox=box)
    kw = _spec(decision).to_run_kwargs()
    assert kw["privileged"] is False and kw["cap_add"] == [] and kw["ports"] == {}
    assert kw["devices"] == [] and kw["environment"] == {}
    assert kw["user"] == box["user"]
    assert kw["cap_drop"] == box["cap_drop"]
    assert kw["read_only"] is box["read_only_root"]
    assert kw["pids_limit"] == box["pids_limit"] and kw["mem_limit"] == box["memory"]
    assert kw["nano_cpus"] > 0
    assert kw["network"] == ("bridge" if box["network"] else "cortex-sandbox")
    assert ("volumes" in kw) is box["filesystem"]
    for source in kw.get("volumes", {}):
        assert "/" not in source  # a named volume, never a host path
    assert ("no-new-privileges" in kw["security_opt"]) is box["no_new_privileges"]
    # Whatever the decision: the plugin seccomp profile and no IPv6.
    assert sum(o.startswith("seccomp={") for o in kw["security_opt"]) == 1
    assert kw["sysctls"]["net.ipv6.conf.all.disable_ipv6"] == "1"


def test_the_seccomp_profile_denies_namespaces_mounts_and_kernel_surface() -> None:
    import json

    opt = next(o for o in _spec().to_run_kwargs()["security_opt"] if o.startswith("seccomp="))
    profile = json.loads(opt.removeprefix("seccomp="))
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
               for n in r["names"]}
    denied = {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ERRNO" for n in r["names"]}
    for name in ("unshare", "setns", "mount", "umount2", "pivot_root", "keyctl", "bpf", "ptrace",
                 "open_tree", "move_mount", "fsopen", "userfaultfd", "io_uring_setup", "perf_event_open",
                 "init_module", "kexec_load", "clone3"):
        assert name in denied and name not in allowed, name
    assert {"read", "write", "execve", "socket", "accept4", "arch_prctl"} - allowed <= {"socket"}
    # clone only without any namespace flag (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET);
    # clone3 cannot be filtered by its flags, so it answers ENOSYS and libc falls back to clone.
    clone = [r for r in profile["syscalls"] if r["names"] == ["clone"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert [r.get("errnoRet") for r in profile["syscalls"] if "clone3" in r["names"]] == [38]


def test_connect_to_a_missing_engine_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(UnavailableError) as exc:
        connect(f"unix://{tmp_path}/no-engine.sock", timeout=2)
    assert "scripts/podman.sh" in (exc.value.advice or "")
    assert exc.value.exit_code == 3
