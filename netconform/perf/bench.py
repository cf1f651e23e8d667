"""Measure one path: TCP (one stream and parallel), UDP, latency.

Every metric becomes a ``Measurement``: the samples, their summary, a
CPU-bound flag, the raw iperf3 JSON, and how long the harness took around
the tools (the overhead ``bench/harness.py`` prints).

How a throughput figure is taken (docs/reports.md, "Measurement method"): each sample is one
short iperf3 test (``Settings.seconds`` of traffic, sized in bytes from a
warm-up test that is not counted), client and server pinned to fixed
cores; a path's TCP samples alternate with samples of its reference (the
raw veth pair; three of them beside a 1 s sample, ``references_per_pair``)
so each ratio is a pair's and drift cancels; samples are
added until the median's 95 % interval (the ratio's, where paired) is
within ``precision`` of it, or ``max_samples`` (half as many again where that would
meet it, and further on the run's ``Reserve`` of time where that can afford it).
A sample during which a process outside the measurement used a core is flagged and taken again;
one iperf3 cannot have meant is the tool's error and taken again.  UDP is
offered at a share of the path's own TCP rate, or of what iperf3's UDP gets
through the raw veth pair where that is less (``udp_ceiling``), so that its
loss describes the path rather than the sender or the receiver.
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace

from ..nodes import Node
from ..result import CommandError
from . import cpu, iperf, latency
from .stats import Summary, ratios, summarise


@dataclass(frozen=True)
class Settings:
    samples: int = 6  # at least (a 95 % interval of a median needs 6)
    max_samples: int = 24  # at most, where the precision is not met before (the cap) ...
    beyond_cap: float = 1.5  # ... unless it would be by this many times the cap (``_Series.stop``)
    seconds: float = 0.2  # of traffic per sample
    lossy_seconds: float = 1.0  # per sample where the warm-up retransmitted (``_size``)
    precision: float = 0.05  # target: the 95 % interval's half-width, as a fraction of the median
    streams: int = 1  # above 1, also tcp-parallel with this many streams (client and server on separate cores)
    udp_share: float = 0.5  # UDP is offered at this share of the path's TCP median or the UDP ceiling, the lesser
    udp_ceiling: float | None = None  # bit/s iperf3's UDP gets through the raw veth pair here (``udp_ceiling``)
    cores: tuple[int, int] | None = None  # client, server (iperf3 -A); None: not pinned
    lab_off: bool = False  # the lab's own processes kept off ``cores`` meanwhile (``path_throughput``)
    machine_cpu: bool = True  # meter this machine's CPU (the nodes run on its kernel)
    repeats: int = 4  # flagged or tool-error samples taken again, at most, per series

    @property
    def split(self) -> Settings:
        """These settings with client and server on separate cores (the measurement's core and the
        one before it): several streams can use more than one core only so; unchanged unpinned."""
        if not self.cores:
            return self
        core = self.cores[1]
        return replace(self, cores=(core - 1 if core else core + 1, core))

    @property
    def pinned(self) -> str:
        if not self.cores:
            return "not pinned"
        if self.cores[0] == self.cores[1]:
            return f"client and server on cpu{self.cores[0]}, the harness{' and the lab' * self.lab_off} off it"
        return f"client on cpu{self.cores[0]}, server on cpu{self.cores[1]}"


@dataclass(frozen=True)
class Ends:
    """Where a throughput series runs: the client's node, the server's, the address and port
    the client connects to, and the port the server listens on (they differ behind DNAT)."""

    source: Node
    target: Node
    address: str
    port: int = iperf.PORT
    server_port: int = iperf.PORT

    @property
    def route(self) -> str:
        return f"{self.source.name} -> {self.target.name}"


@dataclass(frozen=True)
class Measurement:
    """One metric on one path.  A measurement that failed keeps its error and has no summary:
    a figure that was not measured is absent, never zero."""

    path: str  # kind: same-host, to-ext, ...
    route: str  # "c1 -> c2"
    metric: str  # tcp, tcp-parallel, udp, icmp-rtt, tcp-rr
    unit: str  # bit/s or us
    summary: Summary | None
    samples: tuple[float, ...]
    cpu_bound: bool = False
    extra: dict = field(default_factory=dict)
    raw: tuple[str, ...] = ()
    wall_seconds: float = 0.0  # the whole measurement, harness included
    tool_seconds: float = 0.0  # what the tools themselves ran for (every iperf3 client, ``_Series.tool_seconds``)
    error: str | None = None  # why it could not be measured
    ratio: Summary | None = None  # per-pair ratios to the reference, where paired
    precision: float | None = None  # the target the samples were taken to

    @classmethod
    def failed(cls, path: str, route: str, metric: str, unit: str, error: Exception,
               wall: float) -> Measurement:
        return cls(path, route, metric, unit, None, (), error=str(error), wall_seconds=wall)

    @property
    def overhead_seconds(self) -> float:
        return max(0.0, self.wall_seconds - self.tool_seconds)

    @property
    def precise(self) -> float | None:
        """The half-width the figure was taken to: the ratio's where paired, else the median's."""
        decided = self.ratio if self.ratio is not None else self.summary
        return decided.half_width if decided else None

    @property
    def met(self) -> bool:
        return self.precise is not None and self.precision is not None and self.precise <= self.precision


@dataclass
class Reserve:
    """Seconds a whole run may spend on pairs past what ``Settings.beyond_cap`` allows, for
    TCP figures whose interval, narrowing as 1/sqrt(n), would meet the target at what the
    pairs have cost so far: shared by every series of the run, first come first served, so a
    run's imprecise figures cost it at most this much more wall time.  Beyond ``beyond_cap``
    a rule of counts either stops figures seconds short (ovs to-ext at ±7.5-8.3 % in
    two default runs here: 0.36 s a pair, 30-42 more would meet ±5 %) or lets a 1 s series of
    a lossy path run a minute; priced in seconds, the cheap ones go on."""

    seconds: float
    spent: float = 0.0

    @property
    def left(self) -> float:
        return max(0.0, self.seconds - self.spent)


@dataclass
class _Series:
    """Samples of one metric on one path (and its reference's, alternately), as they come."""

    samples: list = field(default_factory=list)  # iperf.Sample of the path
    references: list = field(default_factory=list)  # per pair, a tuple of the reference's iperf.Sample
    uses: list = field(default_factory=list)
    repeated: list = field(default_factory=list)  # why a sample was taken again
    seconds: float = 0.0  # of traffic per sample of the path (``_size``)
    reference_seconds: float | None = None  # per sample of the reference, where paired
    stopped: str = ""  # why no more samples were taken
    tool_seconds: float = 0.0  # every iperf3 client's run: warm-ups, the reference's samples, those taken again
    pairs_seconds: float = 0.0  # wall time of the pairs taken (those taken again included)
    on_reserve: bool = False  # the next pair is the run's ``Reserve``'s (``stop`` says so)
    reserve_seconds: float = 0.0  # of the pairs taken on the run's reserve

    def stop(self, settings: Settings, paired: bool, reserve: Reserve | None = None) -> str | None:
        """Why to take no more samples (the precision met, the cap reached), or None.  A series
        does not stop before the cap because its interval looks out of reach: the machine's
        noisy spells pass (three default runs here: a rule stopping a series whose interval
        after 12 pairs would have needed three times the cap saved 48-63 s of a noisy run and
        stopped two figures that met the target by the cap).  At the cap, a series whose
        interval, narrowing as 1/sqrt(n), would meet the target within ``beyond_cap`` times the
        cap goes on, at most that far: of the 48 figures that missed ±5 % at 24 pairs in thirteen
        default runs here, 30 were within ±6.1 % (would need at most 36), among them 13 of the
        15 of the nine runs that missed three or fewer.  Past that, a series goes on where the
        pairs it needs, at what its pairs have cost so far, fit in what is ``left`` of the run's
        ``reserve``; it then sets ``on_reserve``, and the pair is charged to the reserve."""
        n = len(self.samples)
        self.on_reserve = False
        width = None
        if n >= settings.samples:
            found = (ratios(self.pairs()) if paired else summarise([s.bits_per_second for s in self.samples]))
            width = found.half_width if found is not None else None
            if width is not None and width <= settings.precision:
                return "precision met"
        if n < settings.max_samples:
            return None
        last = math.floor(settings.max_samples * settings.beyond_cap)
        needs = n * (width / settings.precision) ** 2 if width else math.inf
        if n < last and needs <= last:
            return None
        furthest = settings.max_samples * RESERVE_REACH
        more = math.ceil(needs) - n if needs < math.inf else None
        cost = more * self.pairs_seconds / n if more is not None else math.inf
        if reserve is not None and needs <= furthest and cost <= reserve.left:
            self.on_reserve = True
            return None
        why = (f"at the cap ({n} samples)" if n == settings.max_samples
               else f"at {n} samples, the most past the cap ({settings.max_samples}) for a figure within reach"
               if n >= last and not self.reserve_seconds
               else f"at {n} samples, past the cap ({settings.max_samples}): out of reach again")
        if reserve is None or more is None:
            return why
        if needs > furthest:
            return f"{why}; it would need ~{more + n}, more than the run's reserve takes a series to ({furthest})"
        return (f"{why}; the ~{more} more it needs would take ~{cost:.0f} s, "
                f"the run's reserve has {reserve.left:.0f} s of {reserve.seconds:g} left")

    def charge(self, seconds: float, reserve: Reserve | None) -> None:
        """Count a pair's wall time (one taken again included), to the run's reserve where it was
        its (``on_reserve``)."""
        self.pairs_seconds += seconds
        if self.on_reserve and reserve is not None:
            self.reserve_seconds += seconds
            reserve.spent += seconds

    def pairs(self) -> list[tuple[float, float]]:
        """(path, reference) per pair, the reference the geometric mean of its samples in the pair
        (``references_per_pair``), so that a pair's log ratio is the path's log minus their mean."""
        return [(a.bits_per_second, math.prod(b.bits_per_second for b in group) ** (1 / len(group)))
                for a, group in zip(self.samples, self.references)]


def references_per_pair(seconds: float, reference_seconds: float) -> int:
    """How many reference samples a pair takes beside one of the path: enough to make up at least
    half the path sample's traffic time (one beside a 0.2 s sample, three beside a 1 s one).
    A sample's speed is set as it starts (docs/reports.md), so the veth pair's noise enters a
    pair's ratio once per test, however long: beside a 1 s sample of a lossy path, its one 0.2 s
    sample was most of the ratio's variance (ovs cross-host: log-spread 0.06 the path's, 0.13
    the veth pair's).  The mean of three varied 10-35 % less than one sample (not the 42 % of
    independent ones: samples back to back share some of a spell), for 0.4 s more a pair, where
    more of the path's 1 s samples would cost 1.2 s each.  Beside a 0.2 s sample, one is what
    minimises the time to a given width (the two cost and vary alike)."""
    return max(1, math.ceil(seconds / (2 * reference_seconds)))


def _take(ends: Ends, settings: Settings, size: int, streams: int, udp_rate: int | None
          ) -> tuple[iperf.Sample, cpu.CpuUse | None]:
    with cpu.Meter() as meter:
        sample = iperf.run(ends.source, ends.address, size=size, streams=streams, udp_rate=udp_rate,
                           port=ends.port, cores=settings.cores)
    return sample, (meter.use if settings.machine_cpu else None)


def _size(ends: Ends, settings: Settings, streams: int, udp_rate: int | None) -> tuple[int, float, float]:
    """Bytes for ``settings.seconds`` of traffic, from a warm-up test that is not counted (it also
    settles neighbours, conntrack and learning bridges), for UDP at the offered rate, which the
    sender may not reach (iperf3 sends UDP from one thread: 0.5-1 Gbit/s here), for
    ``UDP_WARM_UP_SECONDS`` at most; and those seconds.
    Where the warm-up's TCP retransmitted, ``lossy_seconds``: a retransmission timeout (200 ms
    at least on Linux) halved a 0.2 s sample on the userspace datapaths here (ovs cross-host:
    0.19 or 0.38 Gbit/s, nothing between), where in 1 s samples it costs a fifth, so the samples
    describe the path rather than whether a timeout fell into them.  Also how long the warm-up ran."""
    size = min(UDP_WARM_UP_BYTES, int(udp_rate * UDP_WARM_UP_SECONDS / 8)) if udp_rate else WARM_UP_BYTES
    warm = iperf.run(ends.source, ends.address, size=size, streams=streams, udp_rate=udp_rate,
                     port=ends.port, cores=settings.cores)
    seconds = max(settings.seconds, settings.lossy_seconds) if warm.retransmits else settings.seconds
    return max(int(warm.bits_per_second * seconds / 8), 1_000_000), seconds, warm.seconds


WARM_UP_BYTES = 20_000_000
UDP_WARM_UP_BYTES = 16_000_000  # at most: a quarter of a second of iperf3's UDP sender here, offered without a limit
UDP_WARM_UP_SECONDS = 0.1  # at the offered rate, where that is less
UDP_SECONDS = 0.1  # of traffic per UDP sample, paced below the path's rate: 900-2,900 datagrams here
UDP_SAMPLES = (3, 6)  # at least, at most: loss and jitter are the figures, goodput is bounded by the rate
UDP_UNLIMITED = 100_000_000_000  # bit/s offered: as fast as iperf3's UDP sender goes (``udp_ceiling``)
RESERVE_REACH = 4  # times the cap, the most pairs a series takes on the run's reserve (±10 % at the cap needs that)
INTRUSION = 25.0  # percent of a core used by a process outside the measurement: the sample is flagged


def series(ends: Ends, settings: Settings, streams: int = 1, udp_rate: int | None = None,
           reference: Ends | None = None, reserve: Reserve | None = None) -> _Series:
    """Samples of one metric until ``_Series.stop`` says why not more; with a reference, pairs
    taken one after the other: a path sample, then ``references_per_pair`` of the reference;
    pairs past what the settings allow on the run's ``reserve``, where given.  Raises
    CommandError when the path does not carry the test, iperf.ToolError when every attempt
    was the tool's error."""
    found = _Series()
    both = [ends] + ([reference] if reference else [])
    with ExitStack() as servers:
        servers.enter_context(cpu.kept_off(set(settings.cores or ()) if settings.machine_cpu else set()))
        for end in both:
            servers.enter_context(iperf.server(end.target, end.server_port,
                                               settings.cores[1] if settings.cores else None))
        sized = [_size(end, settings, streams, udp_rate) for end in both]
        sizes = [size for size, _, _ in sized]
        found.seconds = sized[0][1]
        found.reference_seconds = sized[1][1] if reference else None
        found.tool_seconds = sum(warm for _, _, warm in sized)
        ends_of_pair = [(ends, sizes[0])]
        if reference:
            ends_of_pair += [(reference, sizes[1])] * references_per_pair(found.seconds, found.reference_seconds)
        error = None
        while not (why := found.stop(settings, bool(reference), reserve)):
            began = time.monotonic()
            try:
                taken = [_take(end, settings, size, streams, udp_rate) for end, size in ends_of_pair]
            except iperf.ToolError as err:
                error = err
                found.repeated.append(str(err))
                if len(found.repeated) > settings.repeats:
                    why = f"iperf3's errors: {settings.repeats} repeats spent"
                    break
                continue
            finally:
                found.charge(time.monotonic() - began, reserve)
            found.tool_seconds += sum(sample.seconds for sample, _ in taken)
            intruders = [u.competitor[0] for _, u in taken if u and u.competitor[1] >= INTRUSION]
            if intruders and len(found.repeated) < settings.repeats:
                found.repeated.append(f"{intruders[0]} used a core meanwhile")
                continue
            found.samples.append(taken[0][0])
            found.uses.append(taken[0][1])
            if reference:
                found.references.append(tuple(sample for sample, _ in taken[1:]))
        if not found.samples:
            raise error or iperf.ToolError("no sample")
        found.stopped = why
    return found


def throughput(kind: str, ends: Ends, settings: Settings, udp: bool = True,
               reference: Ends | None = None, reserve: Reserve | None = None) -> list[Measurement]:
    """TCP with one stream (and with ``settings.streams`` parallel streams where more than one),
    paired with ``reference`` where given, past the cap on the run's ``reserve``; UDP at
    ``udp_share`` of the TCP median or of ``udp_ceiling``, the lesser (left out where only TCP
    is forwarded, as behind ``-p``)."""
    found = []
    runs = ([("tcp", 1)] + ([("tcp-parallel", settings.streams)] if settings.streams > 1 else [])
            + ([("udp", 1)] if udp else []))
    for metric, streams in runs:
        start = time.monotonic()
        rate = None
        if metric == "udp":
            tcp = next((m for m in found if m.metric == "tcp" and m.summary), None)
            if tcp is None:
                found.append(Measurement(kind, ends.route, metric, "bit/s", None, (),
                                         error="no TCP figure to set the UDP rate from", wall_seconds=0.0))
                continue
            rate = int(min(tcp.summary.median, settings.udp_ceiling or math.inf) * settings.udp_share)
        chosen = settings.split if streams > 1 else settings
        if rate:
            chosen = _udp(settings)
        try:
            taken = (series(ends, chosen, streams, rate) if rate
                     else series(ends, chosen, streams, reference=reference, reserve=reserve))
        except (CommandError, iperf.ToolError) as err:
            found.append(Measurement.failed(kind, ends.route, metric, "bit/s", err, time.monotonic() - start))
            continue
        found.append(_figures(kind, ends.route, metric, streams, rate, taken, chosen,
                              time.monotonic() - start))
    return found


def _udp(settings: Settings) -> Settings:
    """The settings of a UDP series: ``UDP_SAMPLES``, of ``UDP_SECONDS`` each, no room past the cap."""
    return replace(settings, samples=UDP_SAMPLES[0], max_samples=UDP_SAMPLES[1], beyond_cap=1.0, seconds=UDP_SECONDS)


def udp_ceiling(ends: Ends, settings: Settings) -> float | None:
    """The UDP goodput iperf3 gets through ``ends`` (the raw veth pair) offered as fast as it
    sends: the median of ``UDP_SAMPLES[0]`` samples; None where it could not be measured.

    iperf3 sends UDP from one thread and, pinned as a measurement is, shares its core with the
    receiver, which cannot keep up: on the veth pair here 0.5 Gbit/s got through offered 8
    (37-40 % lost in the receiver's socket), 0.87 offered 1 (5-8 % lost), and nothing was lost
    offered 0.6 or less, where TCP carries 16.  Offered half the path's TCP rate (8 Gbit/s on
    every path of a bridge), every fast path lost 10-28 %: the tool's loss, not the path's.
    Offered ``udp_share`` of this ceiling at most, a path loses only what the path drops."""
    chosen = replace(_udp(settings), max_samples=UDP_SAMPLES[0])
    try:
        taken = series(ends, chosen, udp_rate=UDP_UNLIMITED)
    except (CommandError, iperf.ToolError):
        return None
    return summarise([s.bits_per_second for s in taken.samples]).median


def _figures(kind: str, route: str, metric: str, streams: int, rate: int | None, taken: _Series,
             settings: Settings, wall: float) -> Measurement:
    samples = taken.samples
    values = [s.bits_per_second for s in samples]
    extra = {"cpu_sender": [round(s.cpu_sender, 1) for s in samples],
             "cpu_receiver": [round(s.cpu_receiver, 1) for s in samples],
             "machine_cpu": [str(u) if u else "not metered (not this machine's kernel)" for u in taken.uses],
             "streams": streams, "cores": settings.pinned, "seconds_per_sample": taken.seconds,
             "repeated": taken.repeated, "stopped": taken.stopped, "cap": settings.max_samples,
             "reserve_seconds": round(taken.reserve_seconds, 2)}
    if rate:
        extra.update(rate=rate, udp_ceiling=settings.udp_ceiling, lost_percent=[s.lost_percent for s in samples],
                     jitter_ms=[s.jitter_ms for s in samples])
    else:
        extra["retransmits"] = [s.retransmits for s in samples]
    if taken.references:
        extra["reference_samples"] = [s.bits_per_second for group in taken.references for s in group]
        extra["reference_seconds_per_sample"] = taken.reference_seconds
        extra["references_per_pair"] = len(taken.references[0])
    bound = any(s.cpu_bound for s in samples) or any(u and u.bound for u in taken.uses)
    return Measurement(kind, route, metric, "bit/s", summarise(values), tuple(values), bound, extra,
                       tuple(s.raw for s in samples), wall, taken.tool_seconds,
                       ratio=ratios(taken.pairs()) if taken.references else None,
                       precision=settings.precision)


RR_SECONDS = 0.5  # one series of TCP round trips (about five thousand on any path here: a p99 of fifty)


def round_trips(kind: str, source: Node, target: Node, address: str, port: int | None = None,
                pinger: Node | None = None) -> list[Measurement]:
    """ICMP round trips (from ``pinger``: the source's stack, by default the source itself), and
    TCP request/response round trips where the target has a port of its own for the echo server (not
    behind DNAT); a series that fails is recorded with its error."""
    route = f"{source.name} -> {target.name}"
    series = [("icmp-rtt", lambda: latency.icmp(pinger or source, address), latency.ICMP_COUNT * latency.ICMP_INTERVAL)]
    if port is None:
        series.append(("tcp-rr", lambda: latency.tcp_rr(source, target, address, RR_SECONDS), RR_SECONDS))
    found = []
    for metric, measure, tool in series:
        start = time.monotonic()
        try:
            found.append(_latency(kind, route, metric, measure(), time.monotonic() - start, tool))
        except (latency.LatencyError, CommandError) as err:
            found.append(Measurement.failed(kind, route, metric, "us", err, time.monotonic() - start))
    return found


def _latency(kind, route, metric, p: latency.Percentiles, wall: float, tool: float) -> Measurement:
    """Percentiles of one series of ``p.count`` round trips: median p50, min and max the extreme
    round trips, and no confidence interval (there is one series, not repeated samples)."""
    summary = Summary(p.count, p.p50, p.min, p.max, None)
    return Measurement(kind, route, metric, p.unit, summary, (p.p50, p.p90, p.p99),
                       extra={"p50": p.p50, "p90": p.p90, "p99": p.p99, "round_trips": p.count,
                              "tool": p.tool},
                       wall_seconds=wall, tool_seconds=tool)


@contextmanager
def paused_web_server(node: Node, port: int):
    """Stop a container's whoami server on ``port`` (by its PID), and start it again after; the
    port closed before iperf3's server takes it, or a client could reach the whoami server."""
    pidfile = f"/tmp/serve-{port}.pid"
    node.exec(["sh", "-c", f"kill $(cat {pidfile})"]).check("pausing the web server")
    try:
        iperf.await_port(node, port, False, f"the web server on {node.name} closing port {port}")
        yield
    finally:
        node.exec(["sh", "-c", f"/prober serve {port} >/dev/null 2>&1 & echo $! > {pidfile}"])


def path_throughput(lab, path, settings: Settings, reference: Ends | None,
                    reserve: Reserve | None = None) -> list[Measurement]:
    """Throughput on one of a lab's paths (``perf.paths``), through the real DNAT where published,
    TCP paired with ``reference``.  Pinned only where the lab runs on this machine's kernel (a
    VM's cores are not these).  The client is the host's iperf3 in the source's network stack
    (``Lab.stack_tools``), as on the reference: the datapath is the stack's, and an engine's
    exec would add its own cost to every sample (50 ms for docker exec here, against 10 for
    nsenter); the server, started once a series, runs in the container.  Where pinned, the
    lab's own processes (engines, servers, a userspace datapath's forwarders) are kept off the
    measurement's core meanwhile (``Sandbox.kept_off``), as the harness is (``cpu.kept_off``)."""
    local = lab.provider.local_kernel
    settings = replace(settings, machine_cpu=local, cores=settings.cores if local else None,
                       lab_off=local and bool(settings.cores))
    ends = Ends(lab.stack_tools(path.source), lab.node(path.target), path.address, path.port, path.server_port)
    with ExitStack() as stack:
        if path.paused:
            stack.enter_context(paused_web_server(ends.target, path.server_port))
        stack.enter_context(lab.sandbox.kept_off(set(settings.cores) if settings.lab_off else set()))
        return throughput(path.kind, ends, settings, udp=not path.paused, reference=reference, reserve=reserve)


def path_round_trips(lab, path) -> list[Measurement]:
    """Latency on one of a lab's paths (no TCP round trips behind DNAT: the echo server needs a port of its own).
    ICMP goes from the source's stack with the host's busybox ping, whatever capabilities the
    engine gives the container (the ping check reports those): the figure is the datapath's."""
    return round_trips(path.kind, lab.node(path.source), lab.node(path.target), path.address,
                       port=path.port if path.paused else None, pinger=lab.stack_tools(path.source))
