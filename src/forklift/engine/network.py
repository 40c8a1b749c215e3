"""Container networks through the standard CNI plugins (bridge + host-local, portmap).

Networks of a store live in ``<root>/networks/<name>.json``. ``bridge`` (Docker's
default) is built in: Linux bridge ``forklift0`` on 10.210.0.0/16, NATed to the
outside. User-defined bridge networks get a bridge ``fl-<id>`` and a /24 out of
10.211.0.0/16 that no route on the host uses yet; containers on them find each
other by name through /etc/hosts entries kept up to date as they start and stop.

Per container: a network namespace bind-mounted at ``<root>/netns/<id>`` (created
by a short-lived thread that unshares CLONE_NEWNET and brings ``lo`` up: no fork),
handed to runc as ``linux.namespaces[{type: network, path}]``. A plain container on
the default bridge (no ``-p``, no ``--mac-address``) is attached in-process
(`forklift.engine.bridgenet`: rtnetlink, host-local's lease files); everything else
through the plugins, exec'd directly per the CNI spec (CNI_COMMAND=ADD/DEL, config on
stdin, chained with prevResult). The endpoint file (``network.json``) names the host
veth of an in-process attachment (``HostVeth``) or the plugin chain, so teardown undoes
the right one. IP allocations live in /run/forklift/ipam (host-wide, so two stores
never hand out the same address on the shared default bridge). Masquerading and
FORWARD accepts are one rule set per network, added when its bridge is first used,
not per container.
"""

from __future__ import annotations

# the C module: socket's own imports selectors and builds four enums (~2 ms of every run)
import _socket as socket
import contextlib
import ctypes
import fcntl
import json
import os
import struct

from forklift import programs, threads
from forklift.engine import events
from forklift.errors import Conflict, ForkliftError, InvalidArgument, NotFound, RuntimeFailure
from forklift.store import containers as container_store
from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Sequence
    from typing import Any

    from forklift.engine.filters import Filters  # only listing and pruning need filters

CNI_VERSION = "1.0.0"
RUN_DIR = "/run/forklift"
IPAM_DIR = os.path.join(RUN_DIR, "ipam")
DEFAULT_BRIDGE = "forklift0"
DEFAULT_SUBNET = "10.210.0.0/16"
USER_POOL = "10.211.0.0/16"  # user-defined networks' /24s
BUILTIN = ("bridge", "host", "none")
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 2
COMMENT = "forklift"


# ----------------------------------------------------------------------------- network records

def _dir(store: Store) -> str:
    return os.path.join(store.root, "networks")


def _default(store: Store) -> dict[str, Any]:
    return {"Name": "bridge", "Id": "f" * 12 + "0" * 52, "Driver": "bridge", "Scope": "local",
            "Created": "0001-01-01T00:00:00Z", "Internal": False, "Labels": {},
            "Subnet": DEFAULT_SUBNET, "Gateway": "10.210.0.1", "Bridge": DEFAULT_BRIDGE,
            "CniName": "forklift", "Builtin": True}


def get(store: Store, name: str) -> dict[str, Any]:
    """A network by name, ID or ID prefix; NotFound otherwise."""
    if name in ("bridge", "default"):
        return _default(store)
    if name in ("host", "none"):
        # Docker's "none" network has the null driver
        return {"Name": name, "Id": (name.encode().hex() * 32)[:64],
                "Driver": "null" if name == "none" else name,
                "Scope": "local", "Builtin": True, "Labels": {}, "Internal": False,
                "Created": "0001-01-01T00:00:00Z"}
    path = os.path.join(_dir(store), f"{name}.json")
    if "/" not in name and os.path.exists(path):
        with open(path) as f:
            return dict(json.load(f))
    matches = [n for n in all_networks(store) if n["Id"].startswith(name) and len(name) >= 3]
    if len(matches) == 1:
        return matches[0]
    raise NotFound(f"network {name} not found")


def all_networks(store: Store) -> list[dict[str, Any]]:
    out = [get(store, "bridge"), get(store, "host"), get(store, "none")]
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(os.listdir(_dir(store))):
            if entry.endswith(".json"):
                with contextlib.suppress(OSError, ValueError), open(os.path.join(_dir(store), entry)) as f:
                    out.append(json.load(f))
    return out


LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
_TYPES = {"builtin": True, "custom": False}
_DANGLING_ERROR = ("invalid value for filter 'dangling', must be \"true\" (or \"1\"),"
                   " or \"false\" (or \"0\")")


def list_networks(store: Store, filters: Filters | None = None) -> list[dict[str, Any]]:
    """``network ls``: every network by name, filtered as Docker filters them: ``name=``,
    ``id=`` (exact or an expression found in it), ``driver=``, ``scope=`` (exact),
    ``label=k[=v]`` (all must hold), ``type=custom|builtin`` and ``dangling=`` (a custom
    network no container uses; one value).

    Raises InvalidFilter for another key or a value Docker refuses. Reads only.
    """
    from forklift.engine.filters import Filters

    filters = filters or Filters()
    filters.validate(LIST_FILTERS)
    types = filters.choices("type", _TYPES)
    filters.single("dangling")
    dangling = filters.boolean("dangling", error=_DANGLING_ERROR)
    out = []
    for net in all_networks(store):
        builtin = bool(net.get("Builtin"))
        if not (filters.match("name", net["Name"]) and filters.match("id", net["Id"])
                and filters.exact("driver", net["Driver"]) and filters.exact("scope", "local")
                and filters.labels(net.get("Labels") or {})):
            continue
        if types and not any(_TYPES[t] == builtin for t in types):
            continue
        if dangling is not None and dangling != (not builtin and not users(store, net)):
            continue
        out.append(net)
    return sorted(out, key=lambda n: str(n["Name"]))


def _used_subnets() -> list[Any]:
    import ipaddress  # only network create: off the `run` path

    used = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                fields = line.split()
                dest = socket.inet_ntoa(struct.pack("<I", int(fields[1], 16)))
                mask = socket.inet_ntoa(struct.pack("<I", int(fields[7], 16)))
                with contextlib.suppress(ValueError):
                    route = ipaddress.ip_network(f"{dest}/{mask}", strict=False)
                    if route.prefixlen:  # the default route overlaps everything
                        used.append(route)
    except OSError:
        pass
    return used


def create(store: Store, name: str, *, driver: str = "bridge", subnet: str | None = None,
           gateway: str | None = None, internal: bool = False,
           labels: dict[str, str] | None = None) -> dict[str, Any]:
    """``network create``: a bridge network's record (its subnet chosen among those no
    network or host route uses, unless given); InvalidArgument, Conflict for a taken name
    or subnet. Atomic: the record file is linked into place (a concurrent create of the
    same name loses)."""
    if driver != "bridge":
        raise InvalidArgument(f'plugin "{driver}" not found: only the bridge driver is supported')
    if not name or not name[0].isalnum() or not all(c.isalnum() or c in "_.-" for c in name):
        raise InvalidArgument(f'invalid network name "{name}"')
    if name in BUILTIN or name == "default":
        raise Conflict(f"network with name {name} already exists")
    os.makedirs(_dir(store), mode=0o700, exist_ok=True)
    path = os.path.join(_dir(store), f"{name}.json")
    if os.path.exists(path):
        raise Conflict(f"network with name {name} already exists")
    import ipaddress  # (as in _used_subnets)

    from forklift import oci

    taken: list[Any] = [ipaddress.ip_network(n["Subnet"]) for n in all_networks(store) if n.get("Subnet")]
    if subnet:
        net: Any
        try:
            net = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            raise InvalidArgument(f"invalid subnet {subnet}") from None
        if any(net.overlaps(t) for t in taken):
            raise Conflict("Pool overlaps with other one on this address space")
    else:
        used = taken + _used_subnets()
        net = next((c for c in ipaddress.ip_network(USER_POOL).subnets(new_prefix=24)
                    if c.network_address.packed[2] != 0 and not any(c.overlaps(u) for u in used)),
                   None)
        if net is None:
            raise ForkliftError("could not find an available, non-overlapping IPv4 address pool")
    gw = gateway or str(next(net.hosts()))
    net_id = os.urandom(32).hex()
    record = {"Name": name, "Id": net_id, "Driver": "bridge", "Scope": "local",
              "Created": oci.now_rfc3339(), "Internal": internal, "Labels": labels or {},
              "Subnet": str(net), "Gateway": gw, "Bridge": f"fl-{net_id[:12]}",
              "CniName": f"forklift-{net_id[:12]}", "Builtin": False}
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(record, f)
    try:
        os.link(tmp, path)  # fails if a concurrent create won the name
    except FileExistsError:
        raise Conflict(f"network with name {name} already exists") from None
    finally:
        os.unlink(tmp)
    events.emit(store.root, "network", "create", net_id, {"name": name, "type": "bridge"})
    return record


def users(store: Store, net: dict[str, Any]) -> list[Any]:
    """The containers attached to ``net``, running or not."""
    return [r for r in container_store.all_containers(store)
            if _mode(r) in (net["Name"], net["Id"])
            or net["Name"] in (r.host_config.get("ExtraNetworks") or [])]


def _mode(rec: Any) -> str:
    mode = rec.host_config.get("NetworkMode", "bridge")
    return "bridge" if mode == "default" else mode


def remove(store: Store, name: str) -> str:
    net = get(store, name)
    if net.get("Builtin"):
        raise Conflict(f"{net['Name']} is a pre-defined network and cannot be removed")
    in_use = users(store, net)
    if in_use:
        raise Conflict(f"error while removing network: network {net['Name']} id {net['Id']} has"
                       " active endpoints")
    _drop_host_side(net)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(_dir(store), f"{net['Name']}.json"))
    events.emit(store.root, "network", "destroy", net["Id"], {"name": net["Name"], "type": "bridge"})
    return str(net["Name"])


def inspect(store: Store, name: str) -> dict[str, Any]:
    """``network inspect`` in Docker's fields; NotFound."""
    net = get(store, name)
    containers: dict[str, Any] = {}
    for rec in users(store, net):
        info = endpoint_on(store, rec.id, net["Id"])
        if info and rec.effective_state().up:
            containers[rec.id] = {"Name": rec.name, "EndpointID": info.get("EndpointID", ""),
                                  "MacAddress": info.get("MacAddress", ""),
                                  "IPv4Address": f"{info['IPAddress']}/{info['IPPrefixLen']}",
                                  "IPv6Address": ""}
    # Docker's own networks carry no IPAM options (null); `network create` sends a map
    ipam: dict[str, Any] = {"Driver": "default", "Options": None if net.get("Builtin") else {},
                            "Config": []}
    if net.get("Subnet"):
        ipam["Config"] = [{"Subnet": net["Subnet"], "Gateway": net["Gateway"]}]
    return {"Name": net["Name"], "Id": net["Id"], "Created": net["Created"],
            "Scope": "local", "Driver": net["Driver"], "EnableIPv6": False, "IPAM": ipam,
            "Internal": net.get("Internal", False), "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": {"com.docker.network.bridge.name": net["Bridge"]} if net.get("Bridge") else {},
            "Labels": net.get("Labels") or {}}


# ----------------------------------------------------------------------------- host side

def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    import subprocess  # selectors, locale & co.: only the rules and the CNI plugins need it

    proc = subprocess.run([programs.find(argv[0]), *argv[1:]], capture_output=True, text=True,
                          check=False)
    if check and proc.returncode != 0:
        raise RuntimeFailure(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def _rules(net: dict[str, Any]) -> list[list[str]]:
    br, subnet = net["Bridge"], net["Subnet"]
    c = ["-m", "comment", "--comment", f"{COMMENT}:{net['Bridge']}"]
    rules: list[list[str]] = [["-t", "filter", "FORWARD", "-i", br, "-o", br, *c, "-j", "ACCEPT"]]
    if not net.get("Internal"):
        rules += [
            ["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", br, *c, "-j", "MASQUERADE"],
            ["-t", "filter", "FORWARD", "-i", br, *c, "-j", "ACCEPT"],
            ["-t", "filter", "FORWARD", "-o", br, "-m", "conntrack", "--ctstate",
             "RELATED,ESTABLISHED", *c, "-j", "ACCEPT"],
        ]
    return rules


def _ensure_host_side(net: dict[str, Any]) -> None:
    """Once per network and boot: iptables rules (bridge creation is the plugin's job)."""
    os.makedirs(RUN_DIR, mode=0o755, exist_ok=True)
    marker = os.path.join(RUN_DIR, f"rules-{net['Bridge']}")
    if os.path.exists(marker):
        return
    lock = os.open(os.path.join(RUN_DIR, "rules.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(marker):
            return
        for rule in _rules(net):
            table, chain, spec = rule[1], rule[2], rule[3:]
            if _run(["iptables", "-w", "-t", table, "-C", chain, *spec], check=False).returncode != 0:
                _run(["iptables", "-w", "-t", table, "-I", chain, "1", *spec])
        with open(marker, "w"):
            pass
    finally:
        os.close(lock)


def _drop_host_side(net: dict[str, Any]) -> None:
    programs.find("iptables")
    programs.find("ip")  # both first: a missing one must not leave the rules half-deleted
    for rule in _rules(net):
        table, chain, spec = rule[1], rule[2], rule[3:]
        for _ in range(5):
            if _run(["iptables", "-w", "-t", table, "-D", chain, *spec], check=False).returncode != 0:
                break
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(RUN_DIR, f"rules-{net['Bridge']}"))
    _run(["ip", "link", "del", net["Bridge"]], check=False)
    import shutil  # only network rm: bz2 and lzma come with it

    shutil.rmtree(os.path.join(IPAM_DIR, net["CniName"]), ignore_errors=True)


PRUNE_FILTERS = ("label", "label!", "until")


def prune(store: Store, filters: Filters | None = None) -> list[str]:
    """``network prune``: remove every custom network no container uses; returns their
    names. Filters ``until=`` (created before), ``label=``/``label!=`` (its labels).

    Raises InvalidFilter for another key or an unreadable ``until`` before removing any.
    """
    from forklift import oci
    from forklift.engine.filters import Filters

    filters = filters or Filters()
    filters.validate(PRUNE_FILTERS)
    until = filters.until()
    removed = []
    for net in all_networks(store):
        if net.get("Builtin") or users(store, net):
            continue
        if until is not None and oci.parse_time(net.get("Created")) >= until:
            continue
        if filters.prune_labels(net.get("Labels") or {}):
            removed.append(remove(store, net["Name"]))
    return removed


# ----------------------------------------------------------------------------- namespaces

def netns_path(store: Store, container_id: str) -> str:
    """Where the container's network namespace is bind-mounted while it runs."""
    return os.path.join(store.root, "netns", container_id)


def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                          ctypes.c_char_p]
    lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return lib


def create_netns(path: str) -> None:
    """A new network namespace with lo up, kept alive by a bind mount at ``path``."""
    _new_netns(path, keep_sockets=False)


def _new_netns(path: str, keep_sockets: bool) -> tuple[Any, socket.socket] | None:
    """`create_netns` without a fork: a short-lived thread unshares its own network
    namespace (a thread's, not the process's), brings lo up and bind-mounts
    /proc/thread-self/ns/net; ``keep_sockets``: returns a netlink and an AF_INET socket
    made inside it, which keep acting there after the thread is gone."""
    from forklift.engine import bridgenet

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if os.path.exists(path) and os.path.ismount(path):
        destroy_netns(path)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
    lib = _libc()
    out: dict[str, Any] = {}

    def inside() -> None:
        try:
            if lib.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno() or 1, "unshare")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # SIOCSIFFLAGS: IFF_UP | IFF_LOOPBACK | IFF_RUNNING
            fcntl.ioctl(s, 0x8914, struct.pack("16sh14x", b"lo", 0x1 | 0x8 | 0x40))
            if lib.mount(b"/proc/thread-self/ns/net", os.fsencode(path), None, MS_BIND, None) != 0:
                s.close()
                raise OSError(ctypes.get_errno() or 1, "mount")
            if keep_sockets:
                out["sockets"] = (bridgenet.Netlink(), s)
            else:
                s.close()
        except Exception as exc:  # reported by the caller's thread
            out["error"] = getattr(exc, "errno", None) or 1

    threads.start(inside).join()
    if "error" in out:
        destroy_netns(path)
        raise RuntimeFailure(f"cannot create network namespace: {os.strerror(out['error'])}")
    return out.get("sockets")


def destroy_netns(path: str) -> None:
    """Unmount and remove a namespace made by `create_netns`; idempotent."""
    lib = _libc()
    lib.umount2(os.fsencode(path), MNT_DETACH)
    with contextlib.suppress(OSError):
        os.unlink(path)


# ----------------------------------------------------------------------------- CNI

def _cni_path(plugins: list[dict[str, Any]]) -> str:
    """CNI_PATH for the chain: the directories of its plugins and of the IPAM plugin they call."""
    types = [p["type"] for p in plugins] + [p["ipam"]["type"] for p in plugins if "ipam" in p]
    dirs = dict.fromkeys(os.path.dirname(programs.find(t)) for t in types)
    return os.pathsep.join(dirs)


def _require(plugins: list[dict[str, Any]]) -> str:
    """Check every program the chain needs before anything is set up; returns its CNI_PATH.

    iptables is needed for the network's own rules (even when another process already
    added them this boot, so the error does not depend on the host's history) and by
    portmap, which runs it from PATH.
    """
    programs.find("iptables")
    return _cni_path(plugins)


def _plugins(net: dict[str, Any], ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    plugins: list[dict[str, Any]] = [{
        "type": "bridge", "bridge": net["Bridge"], "isGateway": True, "ipMasq": False,
        "hairpinMode": True,
        "ipam": {"type": "host-local", "dataDir": IPAM_DIR,
                 "ranges": [[{"subnet": net["Subnet"], "gateway": net["Gateway"]}]],
                 "routes": [] if net.get("Internal") else [{"dst": "0.0.0.0/0"}]},
    }]
    if ports:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True},
                        "snat": True})
    return plugins


def _invoke(plugin: dict[str, Any], command: str, net: dict[str, Any], container_id: str,
            netns: str, prev: dict[str, Any] | None, ports: list[dict[str, Any]],
            cni_path: str, ifname: str = "eth0") -> dict[str, Any]:
    conf = {"cniVersion": CNI_VERSION, "name": net["CniName"], **plugin}
    if prev is not None:
        conf["prevResult"] = prev
    if plugin["type"] == "portmap":
        conf["runtimeConfig"] = {"portMappings": ports}
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
           "CNI_IFNAME": ifname, "CNI_PATH": cni_path, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    import subprocess  # (as in _run)

    proc = subprocess.run([programs.find(plugin["type"])], input=json.dumps(conf).encode(),
                          capture_output=True, env=env, check=False)
    if proc.returncode != 0:
        msg = proc.stdout.decode(errors="replace").strip() or proc.stderr.decode(errors="replace")
        with contextlib.suppress(ValueError):
            err = json.loads(msg)
            msg = f"{err.get('msg', '')} {err.get('details', '')}".strip()
        raise RuntimeFailure(f"CNI {plugin['type']} {command} failed: {msg}")
    if command == "ADD":
        return dict(json.loads(proc.stdout or b"{}"))
    return {}


def _free_port(proto: str) -> int:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])
    finally:
        s.close()


def _port_mappings(rec: Any) -> list[dict[str, Any]]:
    hc = rec.host_config
    bindings: dict[str, list[dict[str, str]]] = dict(hc.get("PortBindings") or {})
    if hc.get("PublishAllPorts"):
        for port in (rec.config.get("ExposedPorts") or {}):
            bindings.setdefault(port, [{"HostIp": "", "HostPort": ""}])
    out = []
    for port, binds in sorted(bindings.items()):
        num, _, proto = port.partition("/")
        for b in binds:
            host_port = int(b.get("HostPort") or 0) or _free_port(proto or "tcp")
            m = {"hostPort": host_port, "containerPort": int(num), "protocol": proto or "tcp"}
            if b.get("HostIp"):
                m["hostIP"] = b["HostIp"]
            out.append(m)
    return out


def _endpoint_path(store: Store, container_id: str) -> str:
    return os.path.join(store.container_path(container_id), "network.json")


def endpoint(store: Store, container_id: str) -> dict[str, Any] | None:
    """The running container's attachment (address, gateway, ports…), None if it has none."""
    try:
        with open(_endpoint_path(store, container_id)) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return None


def setup(store: Store, rec: Any) -> str | None:
    """Create the container's netns and attach it to its network; returns the netns path."""
    net = get(store, _mode(rec))
    if net["Driver"] != "bridge":
        return None
    path = netns_path(store, rec.id)
    ports = _port_mappings(rec)
    plugins = _plugins(net, ports)
    if rec.config.get("MacAddress"):  # --mac-address: the bridge plugin sets it on eth0
        plugins[0]["capabilities"] = {"mac": True}
        plugins[0]["runtimeConfig"] = {"mac": rec.config["MacAddress"]}
    _with_address(plugins, net, static_address(rec, net["Name"], store))
    cni_path = _require(plugins)
    inside = _new_netns(path, keep_sockets=_native(net, ports, rec))
    host_veth = None
    try:
        _ensure_host_side(net)
        prev: dict[str, Any] | None = None
        if inside is not None:
            from forklift.engine import bridgenet

            plugins = []
            prev = bridgenet.attach(net, IPAM_DIR, rec.id, path, inside)
            host_veth = prev.pop("hostVeth")
        for plugin in plugins:
            prev = _invoke(plugin, "ADD", net, rec.id, path, prev, ports, cni_path)
        for ip in rec.host_config.get("LinkLocalIPs") or []:  # --link-local-ip, as Docker adds it
            _run(["nsenter", f"--net={path}", programs.find("ip"), "addr", "add", f"{ip}/16",
                  "dev", "eth0"])
    except BaseException:
        with contextlib.suppress(Exception):
            _detach_first(net, rec.id, path, plugins, ports, cni_path, host_veth, prev)
        destroy_netns(path)
        raise
    finally:
        for sock in inside or ():
            sock.close()
    result = prev or {}
    ip = next((i for i in result.get("ips", []) if "." in i.get("address", "")), None)
    mac = next((i.get("mac", "") for i in result.get("interfaces", []) if i.get("sandbox")), "")
    address, _, prefix = (ip or {}).get("address", "/").partition("/")
    info = {"Network": net["Name"], "NetworkID": net["Id"], "IPAddress": address,
            "IPPrefixLen": int(prefix or 0), "Gateway": (ip or {}).get("gateway", ""),
            "MacAddress": mac, "EndpointID": os.urandom(32).hex(), "Ports": ports,
            "Plugins": plugins, "NetnsPath": path,
            "Aliases": [rec.name, *(rec.host_config.get("NetworkAliases") or []), rec.id[:12]]}
    if host_veth:
        info["HostVeth"] = host_veth
    with open(_endpoint_path(store, rec.id), "w") as f:
        f.write(json.dumps(info))  # dumps: dump takes the pure-Python encoder
    _publish_hosts(store, rec, net, info)
    events.emit(store.root, "network", "connect", net["Id"],
                {"container": rec.id, "name": net["Name"], "type": "bridge"})
    for extra in rec.host_config.get("ExtraNetworks") or []:
        _attach(store, rec, get(store, extra), path)
    return path


def teardown(store: Store, rec: Any) -> None:
    """Undo `setup`: /etc/hosts entries, CNI attachment, namespace. Idempotent; a CNI
    plugin's failure is ignored (the namespace goes anyway)."""
    info = endpoint(store, rec.id)
    path = netns_path(store, rec.id)
    if info is not None:
        try:
            net = get(store, info["Network"])
        except NotFound:
            net = None
        if net is not None:
            _unpublish_hosts(store, rec, net)
            chain = info.get("Plugins") or []
            with contextlib.suppress(Exception):
                cni_path = _cni_path(chain)
                for plugin in reversed(chain):
                    with contextlib.suppress(Exception):
                        _invoke(plugin, "DEL", net, rec.id, path, None, info.get("Ports") or [],
                                cni_path)
            if info.get("HostVeth"):
                # Only the lease: the veth pair goes with the namespace below, in the
                # kernel's own time (deleting it here costs 15-30 ms of RCU grace periods
                # on the `run --rm` path; the plugin's DEL paid them).
                with contextlib.suppress(Exception):
                    _native_detach(net, rec.id, None, info.get("IPAddress"))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_endpoint_path(store, rec.id))
        events.emit(store.root, "network", "disconnect", info["NetworkID"],
                    {"container": rec.id, "name": info["Network"], "type": "bridge"})
    elif _mode(rec) == "bridge":
        # killed between the lease and the endpoint file: the lease names the container
        with contextlib.suppress(Exception):
            _native_detach(_default(store), rec.id, None, None)
    for extra in extra_endpoints(store, rec.id):
        with contextlib.suppress(Exception):
            _detach(store, rec, extra, path)
    destroy_netns(path)


def _native(net: dict[str, Any], ports: list[dict[str, Any]], rec: Any) -> bool:
    """Whether the container's first network is set up in-process (`bridgenet`): the
    default bridge without published ports or a set MAC address; the CNI plugins do
    everything else (``FORKLIFT_NETWORK_CNI=1``: everything)."""
    return (net["Name"] == "bridge" and not ports and not rec.config.get("MacAddress")
            and os.environ.get("FORKLIFT_NETWORK_CNI") != "1")


def _native_detach(net: dict[str, Any], container_id: str, host_veth: str | None,
                   address: str | None) -> None:
    from forklift.engine import bridgenet

    bridgenet.detach(net, IPAM_DIR, container_id, host_veth, address)


def _detach_first(net: dict[str, Any], container_id: str, path: str,
                  plugins: list[dict[str, Any]], ports: list[dict[str, Any]], cni_path: str,
                  host_veth: str | None, result: dict[str, Any] | None) -> None:
    """Undo a first attachment that failed halfway (whichever way it was made)."""
    if host_veth:
        ip = next((i["address"] for i in (result or {}).get("ips", [])), "")
        _native_detach(net, container_id, host_veth, ip.partition("/")[0] or None)
    for plugin in reversed(plugins):
        with contextlib.suppress(Exception):
            _invoke(plugin, "DEL", net, container_id, path, None, ports, cni_path)


# ----------------------------------------------------------------------------- name resolution

def _hosts_file(store: Store, container_id: str) -> str:
    return os.path.join(store.container_path(container_id), "hosts")


def _rewrite(path: str, keep: Any, add: list[str]) -> None:
    """Rewrite a hosts file in place (it is bind-mounted: the inode must stay)."""
    with contextlib.suppress(OSError), open(path, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        lines = [ln for ln in f.read().splitlines() if keep(ln)]
        lines += add
        f.seek(0)
        f.truncate()
        f.write("\n".join(lines) + "\n")


def _marker(container_id: str, net: dict[str, Any]) -> str:
    """The tag of a container's /etc/hosts line for one network (the lines of all its
    networks share the ``# forklift:<id>`` prefix)."""
    return f"# forklift:{container_id}{_net_tag(net)}"


def _net_tag(net: dict[str, Any]) -> str:
    """How each /etc/hosts line of one network ends (`_marker`'s last part)."""
    return f" net:{net['Id'][:12]}"


def _entry(info: dict[str, Any], rec: Any, net: dict[str, Any]) -> str:
    hostname = rec.config.get("Hostname") or rec.id[:12]
    aliases = info.get("Aliases") or rec.host_config.get("NetworkAliases") or []
    names = dict.fromkeys([rec.name, hostname, rec.id[:12], *aliases])
    return f"{info['IPAddress']}\t{' '.join(names)}\t{_marker(rec.id, net)}"


def _peers(store: Store, rec: Any, net: dict[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """The other running containers on ``net``, each with its endpoint there (its first
    network's or one `connect` added)."""
    out = []
    for other in users(store, net):
        if other.id == rec.id or not other.effective_state().up:
            continue
        info = endpoint_on(store, other.id, net["Id"])
        if info:
            out.append((other, info))
    return out


def _link_lines(store: Store, rec: Any, net: dict[str, Any] | None = None) -> list[str]:
    """``--link NAME[:ALIAS]``: the running target's address under both names, as Docker
    writes it into /etc/hosts (Conflict if the target does not run). ``net``: the links
    `connect` gave on that network, to the target's address there (none if the target is
    not on it, as Docker's names there), tagged as that network's lines."""
    links = (rec.host_config.get("Links") if net is None else
             (rec.host_config.get("ExtraLinks") or {}).get(net["Name"])) or []
    if not links:  # the usual case: runflags stays off the `run` path
        return []
    from forklift.engine.runflags import parse_link

    out = []
    for link in links:
        target_name, alias = parse_link(link)
        target = container_store.resolve(store, target_name)
        info = endpoint(store, target.id) if target.effective_state().up else None
        if info and net is not None:  # a target elsewhere has no name on this network
            info = endpoint_on(store, target.id, net["Id"]) or {"IPAddress": ""}
            if not info["IPAddress"]:
                continue
        if not info or not info.get("IPAddress"):
            raise Conflict(f"Cannot link to a non running container: /{target.name} AS"
                           f" /{rec.name}/{alias or target.name}")
        names = dict.fromkeys([alias or target.name, target.id[:12], target.name])
        tag = f"# forklift:{rec.id}" if net is None else _marker(rec.id, net)
        out.append(f"{info['IPAddress']}\t{' '.join(names)}\t{tag}")
    return out


def _publish_hosts(store: Store, rec: Any, net: dict[str, Any], info: dict[str, Any],
                   first: bool = True) -> None:
    """The container's name on ``net`` in its peers' /etc/hosts, and theirs in its own.
    Its first network's rewrites its own file (our own address replaces the 127.0.1.1
    line, as Docker writes it); a further network's adds to it."""
    own = _entry(info, rec, net)
    peers = _peers(store, rec, net) if not net.get("Builtin") else []
    theirs = [_entry(i, o, net) for o, i in peers]
    if first:
        _rewrite(_hosts_file(store, rec.id),
                 lambda ln: not ln.startswith("127.0.1.1\t") and "# forklift:" not in ln,
                 [own, *_link_lines(store, rec), *theirs])
    else:
        theirs += _link_lines(store, rec, net)
        tag = _net_tag(net)
        if theirs:
            _rewrite(_hosts_file(store, rec.id), lambda ln: not ln.endswith(tag), theirs)
    marker = _marker(rec.id, net)
    for other, _ in peers:
        _rewrite(_hosts_file(store, other.id), lambda ln: marker not in ln, [own])


def _unpublish_hosts(store: Store, rec: Any, net: dict[str, Any], first: bool = True) -> None:
    """Take the container's name on ``net`` out of its peers' /etc/hosts (and, for a
    network `disconnect` removes, theirs out of its own)."""
    if net.get("Builtin"):
        return
    marker = _marker(rec.id, net)
    for other, _ in _peers(store, rec, net):
        _rewrite(_hosts_file(store, other.id), lambda ln: marker not in ln, [])
    if not first:
        tag = _net_tag(net)
        _rewrite(_hosts_file(store, rec.id), lambda ln: not ln.endswith(tag), [])


# ----------------------------------------------------------------------------- static addresses

def check_address(store: Store, name: str, address: str, container_id: str = "") -> str:
    """A user-chosen IPv4 address on the network ``name`` (``--ip``, Docker's
    ``IPAMConfig.IPv4Address``): in its subnet, not its gateway and not held (leased now,
    or chosen by another container). Returns the address; InvalidArgument, Conflict."""
    import ipaddress

    net = get(store, name)
    if net.get("Builtin") or not net.get("Subnet"):
        raise InvalidArgument("user specified IP address is supported on user defined"
                              " networks only")
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address: {address}") from None
    subnet = ipaddress.ip_network(net["Subnet"])
    if ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"Invalid address {ip}: It does not belong to any of this"
                              f" network's subnets")
    lease = os.path.join(IPAM_DIR, net["CniName"], str(ip))
    holder = ""
    with contextlib.suppress(OSError), open(lease) as f:
        holder = (f.read().split() or [""])[0]
    chosen = [r.id for r in users(store, net) if r.id != container_id
              and static_address(r, net["Name"], store) == str(ip)]
    if str(ip) == net.get("Gateway") or chosen or (holder and holder != container_id):
        raise Conflict(f"Address already in use: {ip}")
    return str(ip)


def static_address(rec: Any, net_name: str, store: Store) -> str:
    """The address the container chose on ``net_name`` ("" for the pool's next)."""
    extra = (rec.host_config.get("ExtraIPs") or {}).get(net_name)
    if extra:
        return str(extra)
    first = rec.host_config.get("IPv4Address") or ""
    return str(first) if first and get(store, _mode(rec))["Name"] == net_name else ""


def _with_address(plugins: list[dict[str, Any]], net: dict[str, Any], address: str) -> None:
    """host-local takes a chosen address through the ``ips`` capability."""
    if address:
        prefix = net["Subnet"].partition("/")[2]
        plugins[0]["capabilities"] = {**plugins[0].get("capabilities", {}), "ips": True}
        plugins[0]["runtimeConfig"] = {**plugins[0].get("runtimeConfig", {}),
                                       "ips": [f"{address}/{prefix}"]}


# ----------------------------------------------------------------------------- connect

# A container's first network is its NetworkMode (endpoint ``network.json``, eth0); the
# networks `connect` adds are listed in HostConfig ``ExtraNetworks`` and, while it runs,
# attached as eth1, eth2… with an endpoint file each (``network-<network id>.json``).
# Name resolution (/etc/hosts) covers the first network only.

def endpoint_on(store: Store, container_id: str, net_id: str) -> dict[str, Any] | None:
    """The running container's attachment to the network ``net_id`` (its first or one
    `connect` added), None if it has none."""
    first = endpoint(store, container_id)
    if first is not None and first.get("NetworkID") == net_id:
        return first
    return next((e for e in extra_endpoints(store, container_id) if e["NetworkID"] == net_id),
                None)


def _extra_path(store: Store, container_id: str, net_id: str) -> str:
    return os.path.join(store.container_path(container_id), f"network-{net_id[:12]}.json")


def extra_endpoints(store: Store, container_id: str) -> list[dict[str, Any]]:
    """The attachments `connect` made to the running container, by interface name."""
    out = []
    with contextlib.suppress(OSError):
        for entry in os.listdir(store.container_path(container_id)):
            if entry.startswith("network-") and entry.endswith(".json"):
                with contextlib.suppress(OSError, ValueError), \
                        open(os.path.join(store.container_path(container_id), entry)) as f:
                    out.append(dict(json.load(f)))
    return sorted(out, key=lambda e: int(e["IfName"].removeprefix("eth")))


def _attach(store: Store, rec: Any, net: dict[str, Any], netns: str) -> dict[str, Any]:
    """Attach the running container's namespace to ``net`` on the next free ethN."""
    _link_lines(store, rec, net)  # a link to a stopped container fails before the attach
    taken = {e["IfName"] for e in extra_endpoints(store, rec.id)}
    ifname = next(f"eth{n}" for n in range(1, 1000) if f"eth{n}" not in taken)
    plugins = _plugins(net, [])
    _with_address(plugins, net, static_address(rec, net["Name"], store))
    cni_path = _require(plugins)
    _ensure_host_side(net)
    result = _invoke(plugins[0], "ADD", net, rec.id, netns, None, [], cni_path, ifname)
    ip: dict[str, Any] = next((i for i in result.get("ips", [])
                               if "." in i.get("address", "")), {})
    address, _, prefix = ip.get("address", "/").partition("/")
    info = {"Network": net["Name"], "NetworkID": net["Id"], "IfName": ifname,
            "IPAddress": address, "IPPrefixLen": int(prefix or 0),
            "Gateway": ip.get("gateway", ""), "EndpointID": os.urandom(32).hex(),
            "MacAddress": next((i.get("mac", "") for i in result.get("interfaces", [])
                                if i.get("sandbox")), ""),
            "Plugins": plugins,
            "Aliases": [rec.name, *extra_aliases(rec, net["Name"]), rec.id[:12]]}
    with open(_extra_path(store, rec.id, net["Id"]), "w") as f:
        json.dump(info, f)
    _publish_hosts(store, rec, net, info, first=False)
    events.emit(store.root, "network", "connect", net["Id"],
                {"container": rec.id, "name": net["Name"], "type": "bridge"})
    return info


def _detach(store: Store, rec: Any, info: dict[str, Any], netns: str) -> None:
    chain = info.get("Plugins") or []
    with contextlib.suppress(NotFound):
        net = get(store, info["Network"])
        _unpublish_hosts(store, rec, net, first=False)
        with contextlib.suppress(Exception):
            cni_path = _cni_path(chain)
            for plugin in reversed(chain):
                _invoke(plugin, "DEL", net, rec.id, netns, None, [], cni_path, info["IfName"])
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_extra_path(store, rec.id, info["NetworkID"]))
    events.emit(store.root, "network", "disconnect", info["NetworkID"],
                {"container": rec.id, "name": info["Network"], "type": "bridge"})


def extra_aliases(rec: Any, net_name: str) -> list[str]:
    """The aliases `connect` gave the container on ``net_name``."""
    return list((rec.host_config.get("ExtraAliases") or {}).get(net_name) or [])


_PER_NETWORK = ("ExtraAliases", "ExtraIPs", "ExtraLinks")


def _set_extra(store: Store, rec: Any, names: list[str],
               given: dict[str, dict[str, Any]] | None = None) -> None:
    """Store the networks `connect` added, and what was given on each (``given``: by
    HostConfig key, e.g. ``ExtraAliases``, then network; an empty value drops it)."""
    host_config = dict(rec.host_config, ExtraNetworks=names)
    if not names:
        host_config.pop("ExtraNetworks")
    for key in _PER_NETWORK:
        kept = {k: v for k, v in {**(rec.host_config.get(key) or {}),
                                  **(given or {}).get(key, {})}.items() if v and k in names}
        host_config[key] = kept
        if not kept:
            host_config.pop(key)
    container_store.set_host_config(store, rec.id, host_config)
    rec.host_config = host_config


def connect(store: Store, name: str, container: str, aliases: Sequence[str] = (),
            address: str = "", links: Sequence[str] = ()) -> None:
    """``network connect``: attach the container to a user-defined or the default bridge
    network, live when it runs (the next start attaches it too), known there by its name,
    its ID and ``aliases`` (``--alias``; user-defined networks only, as Docker's), at
    ``address`` (``--ip``) if given, with ``links`` (``--link NAME[:ALIAS]``) as names in
    its /etc/hosts. NotFound (network or container), Conflict (host/none networking,
    already connected, address in use), InvalidArgument (aliases, address or links on a
    default network, an address outside the subnet), RuntimeFailure (CNI)."""
    net = get(store, name)
    rec = container_store.resolve(store, container)
    mode = _mode(rec)
    if net["Driver"] != "bridge" or mode in ("host", "none"):
        raise Conflict("container cannot be disconnected from host network or connected to"
                       " host network" if "host" in (mode, net["Name"]) else
                       f"container sharing network namespace with another container or"
                       f" host cannot be connected to any other network: {mode}")
    if aliases and net.get("Builtin"):
        raise InvalidArgument("network-scoped alias is supported only for containers in"
                              " user defined networks")
    extras = list(rec.host_config.get("ExtraNetworks") or [])
    running = rec.effective_state().up
    if net["Name"] in [get(store, mode)["Name"], *extras]:
        if not running:
            return  # Docker's too: a stopped container's connection is only its config
        raise Conflict(f"endpoint with name {rec.name} already exists in network {net['Name']}")
    with _address_lock(net) if address else contextlib.nullcontext():
        if address:
            address = check_address(store, net["Name"], address, rec.id)
        _check_links(store, net, links)
        _set_extra(store, rec, [*extras, net["Name"]],
                   {"ExtraAliases": {net["Name"]: list(aliases)},
                    "ExtraIPs": {net["Name"]: address}, "ExtraLinks": {net["Name"]: list(links)}})
        if running and endpoint(store, rec.id) is not None:
            try:
                _attach(store, rec, net, netns_path(store, rec.id))
            except BaseException:
                _set_extra(store, rec, extras)
                raise


def _address_lock(net: dict[str, Any]) -> Any:
    """Held by a connect that chooses an address, from its check to its lease: of two at
    once asking for one address, the second sees the first's choice (Conflict) instead
    of failing in the CNI plugin. Not host-local's own lock, which the plugin takes."""
    from forklift.engine import bridgenet

    return bridgenet.locked(os.path.join(RUN_DIR, "address", net["CniName"]))


def _check_links(store: Store, net: dict[str, Any], links: Sequence[str]) -> None:
    """Links on a connect: to existing containers, on a user-defined network (Docker's
    legacy links on the default bridge are create's only)."""
    if links and net.get("Builtin"):
        raise InvalidArgument("links are only supported for user-defined networks on connect")
    from forklift.engine.runflags import parse_link

    for link in links:
        target, alias = parse_link(link)
        if not target or link.count(":") > 1:
            raise InvalidArgument(f"invalid link: {link}")
        try:
            container_store.resolve(store, target)
        except NotFound:
            raise InvalidArgument(f"Could not get container for {target}") from None


def disconnect(store: Store, name: str, container: str, force: bool = False) -> None:
    """``network disconnect``: detach the container from a network `connect` added (live
    when it runs), or from its first network while it is stopped (it then has none).
    NotFound, Conflict (not connected; the first network of a running container)."""
    net = get(store, name)
    rec = container_store.resolve(store, container)
    extras = list(rec.host_config.get("ExtraNetworks") or [])
    if net["Name"] in extras:
        live = [e for e in extra_endpoints(store, rec.id) if e["NetworkID"] == net["Id"]]
        for info in live:
            _detach(store, rec, info, netns_path(store, rec.id))
        _set_extra(store, rec, [n for n in extras if n != net["Name"]])
        return
    if net["Name"] != get(store, _mode(rec))["Name"] or _mode(rec) in ("host", "none"):
        if force:
            return
        raise Conflict(f"container {rec.id} is not connected to the network {net['Name']}")
    if rec.effective_state().up:
        raise Conflict(f"container {rec.short_id} runs with {net['Name']} as its first network:"
                       " stop it to disconnect it")
    # a network `connect` added becomes its first one (with its aliases), else it has
    # none (as in Docker)
    host_config = dict(rec.host_config, NetworkMode=extras[0] if extras else "none",
                       NetworkAliases=extra_aliases(rec, extras[0]) if extras else [],
                       IPv4Address=(rec.host_config.get("ExtraIPs") or {}).get(extras[0])
                       if extras else "")
    for key in ("NetworkAliases", "IPv4Address"):
        if not host_config[key]:
            host_config.pop(key)
    rec.host_config = host_config
    _set_extra(store, rec, extras[1:])
