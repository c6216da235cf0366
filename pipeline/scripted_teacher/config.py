"""The scripted teacher's knobs: latency model, fault rates and the seed that makes fault draws reproducible."""

from __future__ import annotations

from dataclasses import dataclass, fields

from pipeline.errors import ConfigError

_RATES = ("fault_429", "fault_500", "fault_hang", "fault_malformed", "fault_drop", "fault_judge_invalid")


@dataclass(frozen=True)
class ScriptedTeacherConfig:
    """Defaults give an instant, fault-free server. Rates are per request, drawn from a seeded RNG."""

    latency_base: float = 0.0  # seconds added to every answered request
    latency_per_token: float = 0.0  # seconds per completion token (summed over choices)
    jitter: float = 0.0  # uniform extra latency in [0, jitter] seconds
    fault_429: float = 0.0  # share of requests answered 429 with a Retry-After header
    retry_after: float = 1.0  # seconds advertised in Retry-After
    fault_500: float = 0.0  # share answered 500
    fault_hang: float = 0.0  # share that sleep hang_s before answering (longer than a client timeout)
    hang_s: float = 120.0
    fault_malformed: float = 0.0  # share answered 200 with a broken JSON body
    fault_drop: float = 0.0  # share whose connection is closed without any response
    fault_judge_invalid: float = 0.0  # share of judge answers whose content is not valid verdict JSON
    seed: int = 0  # seeds the fault/jitter RNG: reproducible in aggregate, yet a retried request can pass
    policy_path: str | None = None  # policy spec the judge grades with (None = the bundled default policy)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _RATES and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{value} is not a rate between 0 and 1", where=f.name, hint="use e.g. 0.05 for 5%")
            if f.name in ("latency_base", "latency_per_token", "jitter", "retry_after", "hang_s") and value < 0:
                raise ConfigError(f"{value} is negative", where=f.name, hint="latencies are seconds >= 0")
        request_faults = self.fault_429 + self.fault_500 + self.fault_hang + self.fault_malformed + self.fault_drop
        if request_faults > 1.0 + 1e-9:
            raise ConfigError(
                f"request fault rates add up to {request_faults:.3f} > 1",
                where="fault_429+fault_500+fault_hang+fault_malformed+fault_drop",
                hint="each request gets at most one fault; keep the sum <= 1",
            )
