"""Serving processes size torch's thread pool from their CPU quota."""
from __future__ import annotations

from pathlib import Path

import pytest

from serving.threads import cpu_quota, torch_threads


def cgroup_v2(tmp_path: Path, cpu_max: str) -> Path:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    return tmp_path


@pytest.mark.parametrize("cpu_max, expected", [("150000 100000", 1.5), ("max 100000", None)])
def test_the_cgroup_v2_quota_is_read(tmp_path, cpu_max, expected):
    assert cpu_quota(cgroup_v2(tmp_path, cpu_max)) == expected


def test_the_cgroup_v1_quota_is_read(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cpu_quota(tmp_path) == 3.0


def test_threads_follow_the_quota_shared_by_the_workers(tmp_path):
    cgroup = cgroup_v2(tmp_path, "400000 100000")
    assert torch_threads({}, cgroup) == 4
    assert torch_threads({"ONEVISION_WORKERS": "2"}, cgroup) == 2
    assert torch_threads({}, cgroup_v2(tmp_path, "50000 100000")) == 1  # half a CPU still gets one thread


def test_the_environment_setting_wins(tmp_path):
    assert torch_threads({"ONEVISION_TORCH_THREADS": "3"}, cgroup_v2(tmp_path, "100000 100000")) == 3


@pytest.mark.parametrize("env", [{"ONEVISION_TORCH_THREADS": "0"}, {"ONEVISION_TORCH_THREADS": "two"},
                                 {"ONEVISION_WORKERS": "-1"}])
def test_a_bad_setting_names_the_variable(tmp_path, env):
    with pytest.raises(ValueError, match=next(iter(env))):
        torch_threads(env, tmp_path)


def test_without_a_quota_the_usable_cpus_count(tmp_path):
    import os

    assert torch_threads({}, tmp_path) == len(os.sched_getaffinity(0))
