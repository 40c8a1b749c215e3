"""The default bridge's plain attachment set up in-process, without the CNI plugins.

A container on Docker's default network with no published port and no ``--mac-address``
gets what the CNI ``bridge`` + ``host-local`` chain would give it — a veth pair with its
host end on ``forklift0`` (hairpin on) and ``eth0`` inside, the next free address of
10.210.0.0/16, the default route through the gateway — through rtnetlink from this
process: the four plugin execs (ADD and DEL, 30–130 ms together) cost a few syscalls.

The address lease is host-local's, file for file (``/run/forklift/ipam/<network>/<ip>``
holding ``<container id>\\r\\n<ifname>``, ``last_reserved_ip.0``, flock on ``lock``), so
CNI-attached containers on the same bridge (``-p``, other stores, older forklifts) and
these never share an address. The endpoint file says which way a container was attached
(``HostVeth``), so its teardown — also after a crash — undoes the right thing.
"""

from __future__ import annotations

# the C module: socket's own imports selectors and builds four enums (~2 ms of every run)
import _socket as socket
import contextlib
import fcntl
import os
import struct

from forklift.errors import RuntimeFailure

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_DELLINK, RTM_SETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 19, 20, 24
IFLA_IFNAME, IFLA_MASTER, IFLA_TXQLEN, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 13, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_GATEWAY, RTA_OIF = 5, 4
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
IFF_UP = 0x1
SIOCGIFHWADDR, SIOCGIFINDEX = 0x8927, 0x8933
LAST_RESERVED = "last_reserved_ip.0"


# ----------------------------------------------------------------------------- rtnetlink

def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def _str(kind: int, value: str) -> bytes:
    return _attr(kind, value.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP if up else 0,
                       IFF_UP if up else 0)


class Netlink:
    """One NETLINK_ROUTE socket; it acts in the network namespace it was created in."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> None:
        """Send one request and wait for its acknowledgement; OSError(errno) if refused."""
        self.seq += 1
        header = struct.pack("=IHHII", 16 + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK,
                             self.seq, 0)
        self.sock.send(header + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, mtype, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if mtype == NLMSG_ERROR and seq == self.seq:
                    error = -struct.unpack_from("=i", data, offset + 16)[0]
                    if error:
                        raise OSError(error, os.strerror(error))
                    return
                offset += max(16, (length + 3) & ~3)

    def add_veth(self, host: str, peer: str, peer_netns_fd: int, master: int) -> None:
        """A veth pair: ``host`` here, up, a port of the bridge ``master``; ``peer`` in the
        namespace of ``peer_netns_fd``, down."""
        # no transmit queue on either end (qlen 0), as the bridge plugin makes them
        peer_msg = (_ifinfo() + _str(IFLA_IFNAME, peer) + _u32(IFLA_TXQLEN, 0)
                    + _u32(IFLA_NET_NS_FD, peer_netns_fd))
        info = _str(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_msg))
        self.request(RTM_NEWLINK, _ifinfo(up=True) + _str(IFLA_IFNAME, host) + _u32(IFLA_TXQLEN, 0)
                     + _u32(IFLA_MASTER, master) + _attr(IFLA_LINKINFO, info),
                     NLM_F_CREATE | NLM_F_EXCL)

    def add_bridge(self, name: str) -> None:
        with contextlib.suppress(FileExistsError):  # another process made it first
            self.request(RTM_NEWLINK, _ifinfo(up=True) + _str(IFLA_IFNAME, name)
                         + _attr(IFLA_LINKINFO, _str(IFLA_INFO_KIND, "bridge")),
                         NLM_F_CREATE | NLM_F_EXCL)

    def set_up(self, index: int) -> None:
        self.request(RTM_SETLINK, _ifinfo(index, up=True))

    def delete_link(self, name: str) -> None:
        """Delete the interface ``name`` (both ends of a veth); gone already is fine."""
        with contextlib.suppress(FileNotFoundError, OSError):
            self.request(RTM_DELLINK, _ifinfo() + _str(IFLA_IFNAME, name))

    def add_address(self, index: int, address: str, prefix: int) -> None:
        """``address``/``prefix`` (IPv4) on the interface; there already is fine."""
        value = ipv4(address)
        broadcast = value | ((1 << (32 - prefix)) - 1)
        body = (struct.pack("=BBBBI", socket.AF_INET, prefix, 0, 0, index)
                + _attr(IFA_LOCAL, value.to_bytes(4, "big"))
                + _attr(IFA_ADDRESS, value.to_bytes(4, "big"))
                + _attr(IFA_BROADCAST, broadcast.to_bytes(4, "big")))
        with contextlib.suppress(FileExistsError):
            self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, index: int, gateway: str) -> None:
        body = (struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                            0, RTN_UNICAST, 0)
                + _attr(RTA_GATEWAY, socket.inet_aton(gateway)) + _u32(RTA_OIF, index))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)


def _ifreq(sock: socket.socket, request: int, name: str) -> bytes:
    return fcntl.ioctl(sock, request, struct.pack("16s24x", name.encode()))


def if_index(sock: socket.socket, name: str) -> int:
    """The index of ``name`` in the namespace of ``sock`` (an AF_INET socket)."""
    return int(struct.unpack_from("=i", _ifreq(sock, SIOCGIFINDEX, name), 16)[0])


def mac_address(sock: socket.socket, name: str) -> str:
    raw = _ifreq(sock, SIOCGIFHWADDR, name)[18:24]
    return ":".join(f"{b:02x}" for b in raw)


# ----------------------------------------------------------------------------- IPv4 numbers

# A few lines of arithmetic instead of ipaddress, whose import (~1.3 ms) would be on
# every networked `run`.

def ipv4(text: str) -> int:
    """A dotted-quad address as a number; ValueError unless it is exactly one."""
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and int(p) < 256 for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return int.from_bytes(bytes(int(p) for p in parts), "big")


def dotted(value: int) -> str:
    return ".".join(str(b) for b in value.to_bytes(4, "big"))


def network_of(cidr: str) -> tuple[int, int]:
    """(first address, prefix length) of ``a.b.c.d/n`` (no ``/n``: 32); host bits must be
    zero."""
    address, slash, length = cidr.partition("/")
    prefix = 32 if not slash else int(length) if length.isdigit() and length.isascii() else -1
    if not 0 <= prefix <= 32:
        raise ValueError(f"not an IPv4 network: {cidr!r}")
    value = ipv4(address)
    if value & ((1 << (32 - prefix)) - 1):
        raise ValueError(f"{cidr!r} has host bits set")
    return value, prefix


# ----------------------------------------------------------------------------- host-local leases

@contextlib.contextmanager
def locked(directory: str) -> Any:
    """Hold the flock of ``directory``/lock (both made if missing): host-local's own
    lock in its lease directory, or a lock of forklift's (`network._address_lock`)."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT, 0o750)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _owner(path: str) -> list[str]:
    try:
        with open(path, newline="") as f:  # keep the \r\n host-local writes
            return f.read().strip().split("\r\n")
    except (OSError, UnicodeDecodeError):
        return []


def _leases_of(directory: str, container_id: str, ifname: str) -> list[str]:
    """The leased addresses (file names) of ``container_id`` on ``ifname``."""
    out = []
    for entry in os.listdir(directory):
        if entry[:1].isdigit() and _owner(os.path.join(directory, entry)) == [container_id, ifname]:
            out.append(entry)
    return out


def allocate(directory: str, subnet: str, gateway: str, container_id: str,
             ifname: str = "eth0") -> str:
    """Lease an address of ``subnet`` as host-local does (round robin after the last one
    reserved, the gateway skipped, the container's existing lease kept); OSError
    (ENOSPC) when none is free."""
    network, prefix = network_of(subnet)
    first, last = network + 1, (network | ((1 << (32 - prefix)) - 1)) - 1
    with locked(directory):
        held = _leases_of(directory, container_id, ifname)
        if held:
            return held[0]
        start = first
        with contextlib.suppress(OSError, ValueError), \
                open(os.path.join(directory, LAST_RESERVED)) as f:
            previous = ipv4(f.read().strip())
            if first <= previous <= last:
                start = previous + 1
        total = last - first + 1
        skip = ipv4(gateway)
        for step in range(total):
            candidate = first + (start - first + step) % total
            if candidate == skip:
                continue
            address = dotted(candidate)
            try:
                fd = os.open(os.path.join(directory, address),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{container_id}\r\n{ifname}")
            with open(os.path.join(directory, LAST_RESERVED), "w") as f:
                f.write(address)
            return address
    raise OSError(28, f"no IP addresses available in range set: {subnet}")


def release(directory: str, container_id: str, address: str | None = None,
            ifname: str = "eth0") -> None:
    """Give the container's lease back: ``address`` if known, else every lease it holds
    (a crash before its endpoint was written). Idempotent."""
    if not os.path.isdir(directory):
        return
    with contextlib.suppress(FileNotFoundError), locked(directory):
        names = [address] if address else _leases_of(directory, container_id, ifname)
        for name in names:
            path = os.path.join(directory, name)
            if _owner(path) == [container_id, ifname]:
                os.unlink(path)


# ----------------------------------------------------------------------------- attach / detach

def _host_ready(nl: Netlink, probe: socket.socket, net: dict[str, Any]) -> int:
    """The bridge's index: made if missing, up, with the gateway address (each a no-op
    when so already); forwarding on. What the bridge plugin's ADD ensures (isGateway)."""
    try:
        index = if_index(probe, net["Bridge"])
    except OSError:
        nl.add_bridge(net["Bridge"])
        index = if_index(probe, net["Bridge"])
    nl.add_address(index, net["Gateway"], network_of(net["Subnet"])[1])
    nl.set_up(index)
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forwarding = f.read(1) == "1"
    if not forwarding:
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")
    return index


def attach(net: dict[str, Any], ipam_dir: str, container_id: str, netns: str,
           inside: tuple[Netlink, socket.socket]) -> dict[str, Any]:
    """Attach the namespace at ``netns`` (``inside``: a netlink and an AF_INET socket made
    in it) to the bridge of ``net`` as eth0; returns the CNI-shaped result and the host
    veth's name under ``hostVeth``. RuntimeFailure (one line) if the kernel refuses a
step or no address is free; nothing stays then (the lease is released)."""
    inner_nl, inner = inside
    directory = os.path.join(ipam_dir, net["CniName"])
    nl = Netlink()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host = "veth" + os.urandom(4).hex()
    address, made = None, False
    try:
        bridge = _host_ready(nl, probe, net)
        address = allocate(directory, net["Subnet"], net["Gateway"], container_id)
        prefix = network_of(net["Subnet"])[1]
        fd = os.open(netns, os.O_RDONLY)
        try:
            nl.add_veth(host, "eth0", fd, bridge)
            made = True
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):  # hairpin: a container reaches itself via the host
            with open(f"/sys/class/net/{host}/brport/hairpin_mode", "w") as f:
                f.write("1")
        index = if_index(inner, "eth0")
        inner_nl.add_address(index, address, prefix)
        inner_nl.set_up(index)
        if not net.get("Internal"):
            inner_nl.add_default_route(index, net["Gateway"])
        mac = mac_address(inner, "eth0")
    except BaseException as exc:
        if made:
            nl.delete_link(host)
        if address:
            release(directory, container_id, address)
        if isinstance(exc, OSError):
            raise RuntimeFailure(f"cannot attach to bridge {net['Bridge']}:"
                                 f" {exc.strerror or exc}") from None
        raise
    finally:
        nl.close()
        probe.close()
    return {"cniVersion": "1.0.0", "hostVeth": host,
            "interfaces": [{"name": host}, {"name": "eth0", "mac": mac, "sandbox": netns}],
            "ips": [{"address": f"{address}/{prefix}", "gateway": net["Gateway"], "interface": 1}]}


def detach(net: dict[str, Any], ipam_dir: str, container_id: str, host_veth: str | None,
           address: str | None) -> None:
    """Undo `attach`: the veth pair if named (else it goes when its namespace is
    destroyed), then the lease (``address`` None: whatever the container holds).
    Idempotent."""
    if host_veth:
        nl = Netlink()
        try:
            nl.delete_link(host_veth)
        finally:
            nl.close()
    release(os.path.join(ipam_dir, net["CniName"]), container_id, address)
