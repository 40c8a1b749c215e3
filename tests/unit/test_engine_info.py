"""``engine.info``: Docker 20.10's ``info --format '{{json .}}'`` keys (recorded from its CLI
on this machine) with values read from the store and the host."""

from __future__ import annotations

import os

from forklift.engine.info import info
from forklift.store.db import Store

# docker info --format '{{json .}}' of Docker 20.10.24 (CLI and engine), sorted
DOCKER_KEYS = [
    "Architecture", "BridgeNfIp6tables", "BridgeNfIptables", "CPUSet", "CPUShares",
    "CgroupDriver", "CgroupVersion", "ClientInfo", "ContainerdCommit", "Containers",
    "ContainersPaused", "ContainersRunning", "ContainersStopped", "CpuCfsPeriod", "CpuCfsQuota",
    "Debug", "DefaultRuntime", "DockerRootDir", "Driver", "DriverStatus", "ExperimentalBuild",
    "GenericResources", "HttpProxy", "HttpsProxy", "ID", "IPv4Forwarding", "Images",
    "IndexServerAddress", "InitBinary", "InitCommit", "Isolation", "KernelMemory",
    "KernelMemoryTCP", "KernelVersion", "Labels", "LiveRestoreEnabled", "LoggingDriver",
    "MemTotal", "MemoryLimit", "NCPU", "NEventsListener", "NFd", "NGoroutines", "Name",
    "NoProxy", "OSType", "OSVersion", "OomKillDisable", "OperatingSystem", "PidsLimit",
    "Plugins", "RegistryConfig", "RuncCommit", "Runtimes", "SecurityOptions", "ServerVersion",
    "SwapLimit", "Swarm", "SystemTime", "Warnings"]


def test_info_has_dockers_keys_and_this_store(store: Store) -> None:
    doc = info(store)
    assert sorted(doc) == DOCKER_KEYS
    assert doc["DockerRootDir"] == store.root
    assert (doc["Containers"], doc["Images"]) == (0, 0)
    assert dict(doc["DriverStatus"])["Layers"] == "0"
    assert doc["ID"] == info(store)["ID"] and len(doc["ID"].split(":")) == 12
    assert doc["KernelVersion"] == os.uname().release
    assert doc["SystemTime"].endswith("Z") and doc["SystemTime"][10] == "T"


def test_info_reads_the_insecure_registries_config(store: Store, monkeypatch) -> None:
    monkeypatch.setenv("FORKLIFT_INSECURE_REGISTRIES", "reg.example:5000,10.1.0.0/16")
    registry = info(store)["RegistryConfig"]
    assert registry["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.1.0.0/16"]
    assert registry["IndexConfigs"]["reg.example:5000"]["Secure"] is False
    assert registry["IndexConfigs"]["docker.io"]["Official"] is True
