"""A byte buffer that keeps only the first or the last N bytes of a stream."""


class CappedBuffer:
    """Collects a stream's bytes in bounded memory; `keep` is "head" (first N) or "tail" (last N)."""

    def __init__(self, limit: int, keep: str = "head"):
        if keep not in ("head", "tail"):
            raise ValueError(f"keep must be 'head' or 'tail', not {keep!r}")
        self.limit, self.keep = limit, keep
        self.total_bytes = 0
        self._data = bytearray()

    def append(self, chunk: bytes) -> None:
        self.total_bytes += len(chunk)
        if self.keep == "head":
            self._data += chunk[: max(0, self.limit - len(self._data))]
        else:
            self._data += chunk[-self.limit:] if self.limit else b""
            if len(self._data) > 2 * self.limit:  # trim in batches: amortised O(1) per byte
                del self._data[: len(self._data) - self.limit]

    @property
    def truncated(self) -> bool:
        return self.total_bytes > self.limit

    def getvalue(self) -> bytes:
        return bytes(self._data[: self.limit] if self.keep == "head" else self._data[max(0, len(self._data) - self.limit):])

    def text(self) -> str:
        return self.getvalue().decode("utf-8", errors="replace")
