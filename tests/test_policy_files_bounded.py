"""What a policy may make Escalade read: regular files only, of bounded size, and includes
only from the policy's own folder unless ``--allow-includes-outside`` says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from escalade.policy import load_policy
from escalade.policy.loader import (
    MAX_POLICY_FILE_BYTES,
    MAX_POLICY_TOTAL_BYTES,
    PolicyFileError,
    load_document,
)

POLICY_HEAD = "id: bounded\nteams: [{id: ops}]\ncategories: [{id: general, owner: ops}]\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def problems(path: Path | str, **kwargs: bool) -> list[str]:
    with pytest.raises(PolicyFileError) as err:
        load_document(path, **kwargs)
    return [str(p) for p in err.value.problems]


def escalade(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "escalade.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_policy_check_dev_zero_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    started = time.monotonic()
    done = escalade("policy", "check", "/dev/zero", cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "/dev/zero:1:1: is not a regular file (it is a character device): a policy is read "
        "only from a regular file"
    ]
    assert "Traceback" not in done.stderr


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    assert problems(fifo) == [
        f"{fifo}:1:1: is not a regular file (it is a FIFO): a policy is read only from a "
        "regular file"
    ]
    write(tmp_path, "main.yaml", POLICY_HEAD + "include: policy.yaml\n")
    assert "is not a regular file (it is a FIFO)" in problems(tmp_path / "main.yaml")[0]


def test_files_too_large_are_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        f.write(POLICY_HEAD)
        f.write("#" * MAX_POLICY_FILE_BYTES + "\n")
    assert problems(big) == [
        f"{big}:1:1: the file is larger than {MAX_POLICY_FILE_BYTES} bytes, the most a "
        "policy file may be"
    ]
    # several parts each under the limit, together over it
    part = "#" * (MAX_POLICY_FILE_BYTES - 100) + "\nroles: []\n"
    count = MAX_POLICY_TOTAL_BYTES // MAX_POLICY_FILE_BYTES + 1
    names = [f"part{i}.yaml" for i in range(count)]
    for name in names:
        write(tmp_path, name, part)
    main = write(tmp_path, "main.yaml", POLICY_HEAD + f"include: [{', '.join(names)}]\n")
    [message] = problems(main)
    assert f"a policy and its includes may hold at most {MAX_POLICY_TOTAL_BYTES} bytes" in message


def test_includes_stay_in_the_policys_folder(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    write(tmp_path, "outside.yaml", "roles: [{id: cfo}]\n")
    write(folder, "parts/people.yaml", "people: [{id: ana}]\n")
    (folder / "parts" / "sneaky.yaml").symlink_to(tmp_path / "outside.yaml")
    ok = write(folder, "ok.yaml", POLICY_HEAD + "include: [parts/people.yaml]\n")
    assert [p.id for p in load_policy(ok).people] == ["ana"]

    main = write(
        folder,
        "main.yaml",
        POLICY_HEAD + "include:\n  - ../outside.yaml\n  - /etc/passwd\n  - parts/sneaky.yaml\n",
    )
    found = problems(main)
    assert len(found) == 3
    assert found[0] == (
        f"{main}:5:5: include ../outside.yaml is outside the policy's folder {folder} "
        f"(it is {tmp_path / 'outside.yaml'}): keep included parts in that folder or below, "
        "or allow it with --allow-includes-outside"
    )
    assert found[1].startswith(f"{main}:6:5: include /etc/passwd is outside the policy's folder")
    assert found[2].startswith(f"{main}:7:5: include parts/sneaky.yaml is outside")  # a symlink

    allowed = write(folder, "allowed.yaml", POLICY_HEAD + "include: [../outside.yaml]\n")
    assert [r.id for r in load_policy(allowed, allow_includes_outside=True).roles] == ["cfo"]


def test_the_cli_flag_allows_includes_outside(tmp_path: Path) -> None:
    write(tmp_path, "shared/roles.yaml", "roles: [{id: cfo}]\n")
    write(tmp_path, "policies/p.yaml", POLICY_HEAD + "include: [../shared/roles.yaml]\n")
    refused = escalade("policy", "check", "policies/p.yaml", cwd=tmp_path)
    assert refused.returncode == 1
    assert "is outside the policy's folder" in refused.stdout
    allowed = escalade(
        "policy", "check", "--allow-includes-outside", "policies/p.yaml", cwd=tmp_path
    )
    assert allowed.returncode == 0, allowed.stdout
    routed = escalade(
        "route",
        "--policy",
        "policies/p.yaml",
        "--allow-includes-outside",
        "-",
        cwd=tmp_path,
        stdin='{"subject": "hello"}',
    )
    assert routed.returncode == 0, routed.stderr
    assert '"team":"ops"' in routed.stdout


# Scenario files for `escalade simulate` are read under the same rules.


def test_simulate_refuses_a_device_as_scenario_and_fails_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    result = escalade("simulate", "/dev/zero", cwd=tmp_path)
    assert time.monotonic() - started < 20
    assert result.returncode == 1 and result.stdout == ""
    assert "/dev/zero:1:1: is not a regular file (it is a character device): a scenario" in (
        result.stderr
    )


def test_a_fifo_scenario_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    from escalade.simulate.scenario import ScenarioInvalid, load_scenario

    fifo = tmp_path / "day.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioInvalid) as err:
        load_scenario(fifo)
    assert [str(p) for p in err.value.problems] == [
        f"{fifo}:1:1: is not a regular file (it is a FIFO): a scenario is read only from a "
        "regular file"
    ]


def test_a_scenario_larger_than_the_limit_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from escalade.simulate import scenario as module

    monkeypatch.setattr(module, "MAX_SCENARIO_BYTES", 100)
    path = write(tmp_path, "big.yaml", "start: 2026-01-01T00:00:00Z\nuntil: 1h\n" + "#" * 200)
    with pytest.raises(module.ScenarioInvalid) as err:
        module.load_scenario(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:1:1: the file is larger than 100 bytes, the most a scenario file may be"
    ]
