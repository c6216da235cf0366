"""AIMD decisions (pure, on a fake clock) and the asyncio gate that enforces them."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.limiter import AdaptiveLimiter, AimdController


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def controller(clock: Clock, **kw) -> AimdController:
    kw.setdefault("initial", 4)
    kw.setdefault("ceiling", 16)
    return AimdController(clock=clock, **kw)


def test_initial_window_is_clamped_and_arguments_checked() -> None:
    assert controller(Clock(), initial=0).window == 1
    assert controller(Clock(), initial=99, ceiling=8).window == 8
    with pytest.raises(ValueError):
        AimdController(initial=1, ceiling=0)
    with pytest.raises(ValueError):
        AimdController(initial=1, ceiling=4, decrease_factor=1.0)
    with pytest.raises(ValueError):
        AimdController(initial=1, ceiling=4, latency_factor=1.0)


def test_slow_start_doubles_per_round_trip_until_the_first_push_back() -> None:
    clock = Clock()
    c = controller(clock, initial=4, ceiling=64)
    for _ in range(4):  # one round trip of a full window
        c.on_success(0.5)
    assert c.window == 8
    for _ in range(8):
        c.on_success(0.5)
    assert c.window == 16
    c.on_overload("http_429")
    assert c.window == 8
    clock.t += 1.0
    for _ in range(8):  # after the push-back: congestion avoidance, +1 per full window
        c.on_success(0.5)
    assert c.window == 9


def congestion_avoidance(clock: Clock, *, window: int, **kw) -> AimdController:
    """A controller that has left slow start (one push-back) and sits at `window`."""
    c = controller(clock, initial=2 * window, **kw)
    c.on_overload("http_429")
    clock.t += 2.0
    assert c.window == window
    return c


def test_additive_increase_one_per_window_of_successes_up_to_ceiling() -> None:
    c = congestion_avoidance(Clock(), window=4, ceiling=8)
    c.ceiling = 6
    for _ in range(3):
        c.on_success(0.5)
    assert c.window == 4
    c.on_success(0.5)  # the 4th success completes a window
    assert c.window == 5
    for _ in range(5):
        c.on_success(0.5)
    assert c.window == 6
    for _ in range(100):
        c.on_success(0.5)
    assert c.window == 6 and c.increases == 2


def test_overload_halves_once_per_round_trip_and_never_below_floor() -> None:
    clock = Clock()
    c = controller(clock, initial=16, ceiling=16)
    c.on_success(0.5)
    c.on_overload("http_429")
    assert c.window == 8
    c.on_overload("http_429")  # same congestion episode (within one RTT): no second cut
    c.on_overload("timeout")
    assert c.window == 8
    clock.t += 0.6
    c.on_overload("timeout")
    assert c.window == 4
    for _ in range(10):
        clock.t += 1.0
        c.on_overload("http_429")
    assert c.window == 1
    assert c.snapshot()["decreases_by_kind"] == {"http_429": 3, "timeout": 1}  # cuts at the floor are no cuts


def test_retry_after_holds_the_window_until_the_cooldown_passes() -> None:
    clock = Clock()
    c = controller(clock, initial=8, ceiling=16)
    c.on_overload("http_429", retry_after=5.0)
    assert c.window == 4 and c.cooldown_remaining() == pytest.approx(5.0)
    for _ in range(20):
        c.on_success(0.5)
    assert c.window == 4  # healthy answers, but still inside the cooldown
    clock.t += 5.0
    assert c.cooldown_remaining() == 0.0
    for _ in range(4):
        c.on_success(0.5)
    assert c.window == 5


def test_rising_latency_shrinks_the_window() -> None:
    clock = Clock()
    c = congestion_avoidance(clock, window=16, ceiling=64, latency_factor=3.0, latency_samples=10)
    for _ in range(30):
        c.on_success(0.5)
    assert c.window == 17 and not c.latency_elevated()
    while not c.latency_elevated():
        c.on_success(5.0)  # ten times the baseline: a queue is building at the server
    assert c.window == 15  # the gentle latency cut, 17 x 0.9
    assert c.snapshot()["decreases_by_kind"] == {"http_429": 1, "latency": 1}
    assert c.min_latency == 0.5


def test_running_minimum_ages_out() -> None:
    c = controller(Clock(), min_window_samples=10)
    c.on_success(0.01)  # one freak fast answer
    for _ in range(25):
        c.on_success(1.0)
    assert c.min_latency == 1.0


def test_gate_never_admits_more_than_the_window_and_is_fifo() -> None:
    async def go() -> None:
        limiter = AdaptiveLimiter(AimdController(initial=3, ceiling=3))
        peak = 0
        order: list[int] = []

        async def job(i: int) -> None:
            nonlocal peak
            async with limiter.slot():
                order.append(i)
                peak = max(peak, limiter.in_flight)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(job(i) for i in range(20)))
        assert peak == 3 and order == list(range(20)) and limiter.in_flight == 0

    asyncio.run(go())


def test_gate_follows_a_shrinking_window() -> None:
    async def go() -> None:
        limiter = AdaptiveLimiter(AimdController(initial=8, ceiling=8))
        gates = [asyncio.Event() for _ in range(8)]
        admitted: list[int] = []

        async def holder(i: int) -> None:
            async with limiter.slot() as slot:
                await gates[i].wait()
                slot.neutral()

        async def waiter(i: int) -> None:
            async with limiter.slot() as slot:
                admitted.append(i)
                slot.neutral()

        holders = [asyncio.create_task(holder(i)) for i in range(8)]
        await asyncio.sleep(0)
        assert limiter.in_flight == 8
        limiter.controller.on_overload("http_429")  # a 429 arrives while 8 are in flight: window 8 -> 4
        waiters = [asyncio.create_task(waiter(i)) for i in range(10)]
        await asyncio.sleep(0)
        assert limiter.controller.window == 4 and limiter.in_flight == 8
        for i in range(4):  # 8 -> 4 in flight: still not below the new window
            gates[i].set()
            await asyncio.sleep(0.01)
        assert admitted == [] and limiter.in_flight == 4
        gates[4].set()
        await asyncio.sleep(0.01)
        assert admitted == list(range(10))[: len(admitted)] and len(admitted) >= 1
        for g in gates:
            g.set()
        await asyncio.gather(*holders, *waiters)
        assert admitted == list(range(10)) and limiter.in_flight == 0

    asyncio.run(go())


def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def go() -> None:
        limiter = AdaptiveLimiter(AimdController(initial=1, ceiling=1))
        release = asyncio.Event()

        async def holder() -> None:
            async with limiter.slot():
                await release.wait()

        async def waiter() -> None:
            async with limiter.slot():
                pass

        h = asyncio.create_task(holder())
        await asyncio.sleep(0)
        w = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        w.cancel()
        release.set()
        await h
        with pytest.raises(asyncio.CancelledError):
            await w
        assert limiter.in_flight == 0
        async with limiter.slot():  # still usable
            assert limiter.in_flight == 1

    asyncio.run(go())


def test_slot_reports_success_timeout_and_neutral_outcomes() -> None:
    async def go() -> None:
        limiter = AdaptiveLimiter(AimdController(initial=4, ceiling=4))
        async with limiter.slot():
            pass
        assert limiter.controller.snapshot()["latency_ewma_s"] is not None
        with pytest.raises(TimeoutError):
            async with limiter.slot():
                raise TimeoutError
        assert limiter.controller.window == 2
        with pytest.raises(KeyError):
            async with limiter.slot():
                raise KeyError("not a load signal")
        async with limiter.slot() as slot:
            slot.neutral()
        assert limiter.controller.window == 2 and limiter.in_flight == 0

    asyncio.run(go())
