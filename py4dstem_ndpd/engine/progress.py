"""Progress bar of a run: patterns done, patterns/s and the remaining time (``tqdm.auto``)."""
from __future__ import annotations


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int, *, enabled: bool, desc: str = "ndpd", initial: int = 0):
    """A ``tqdm.auto`` bar counting patterns (``pattern/s`` and ETA), or a silent stand-in when disabled.

    Parameters
    ----------
    total : int
        Patterns in the scan.
    enabled : bool
        False gives an object with the same ``update``/``close`` methods that shows nothing.
    desc : str
        Label in front of the bar.
    initial : int
        Patterns already done (e.g. restored from a checkpoint).
    """
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="pattern", unit_scale=False, smoothing=0.1,
                dynamic_ncols=True)
