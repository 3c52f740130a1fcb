"""The envelope: what a byte tier stores around a serialized value.

Layout (big-endian), 48 bytes of header, then an optional 32-byte HMAC, then
the payload::

    magic b"SC" | format u8 (3) | flags u8 | version 8 bytes | generation u64
    | expires_ms u64 | keep_ms u64 | stale_ms u64 | delta_ms u32

- ``flags``: serializer id (low nibble), compressed (0x10), signed (0x20), and
  the record's kind: a value, a tombstone (0x40, left by an invalidation) or a
  lease (0x80, a fill in progress).
- ``version``: 8 random bytes per write. Conditional writes compare it (it
  sits at :data:`~stratacache.tiers.base.VERSION_OFFSET`), so a fill that
  started before an invalidation can never overwrite it.
- ``expires``: when the entry stops being served; ``keep``: until when the
  record must stay in the tier (never earlier than ``expires``, and never
  earlier than a tombstone it replaced); ``stale``/``delta``: freshness facts.
- With a signing key, the HMAC-SHA256 covers the stored key, the whole header
  and the payload, and is checked before anything else is done with the
  payload: an entry copied onto another key, or with its expiry edited, is
  refused. Decompression stops at ``max_bytes``.

Anything that does not parse is a :class:`~stratacache.errors.SerializationError`:
a counted miss for the caller, never a crash.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Final, NamedTuple

from stratacache.config import ENV_SIGNING_KEY, env_str
from stratacache.errors import ConfigurationError, SerializationError
from stratacache.serialization import JsonSerializer, Serializer
from stratacache.tiers.base import VERSION_OFFSET, VERSION_SIZE

FORMAT: Final = 3
_MAGIC: Final = b"SC"
_HEADER: Final = struct.Struct(">2sBB8sQQQQI")
HEADER_SIZE: Final = _HEADER.size
"""Bytes of header in front of every payload (a signature adds :data:`MAC_SIZE`)."""
MAC_SIZE: Final = 32
COMPRESS_MIN_BYTES: Final = 1024
"""Payloads at least this large are compressed when that makes them smaller."""
DEFAULT_MAX_BYTES: Final = 32 * 1024 * 1024
"""Largest serialized value written or decoded (after decompression) by default."""
_MAX_MS: Final = 2**63 - 1
_INFLATE_STEP: Final = 1 << 20

_SERIALIZER: Final = 0x0F
_COMPRESSED: Final = 0x10
_SIGNED: Final = 0x20
_TOMBSTONE: Final = 0x40
_LEASE: Final = 0x80

VALUE: Final = "value"
TOMBSTONE: Final = "tombstone"
LEASE: Final = "lease"

assert VERSION_OFFSET == 4
assert VERSION_SIZE == 8


class Record(NamedTuple):
    """A decoded record: what kind, its value (values only) and its facts.

    Times are epoch seconds; ``None`` means never (expiry) or not set (stale).
    """

    kind: str
    value: object
    version: bytes
    generation: int
    expires_at: float | None
    keep_until: float | None
    stale_at: float | None = None
    delta: float = 0.0


class OversizeError(SerializationError):
    """A value serialized past the cache's limit: cached nowhere, memory included."""


def _record(fields: tuple[object, ...]) -> Record:
    """A Record from its fields in order, without NamedTuple's keyword handling."""
    return tuple.__new__(Record, fields)


class Payload(NamedTuple):
    """A value serialized (and maybe compressed) once, to be wrapped per tier."""

    flags: int
    data: bytes


def new_version() -> bytes:
    """8 fresh random bytes: a write's version, or a lease's token."""
    return os.urandom(VERSION_SIZE)


def _ms(at: float | None) -> int:
    if at is None:
        return 0
    return min(_MAX_MS, max(1, int(-(-at * 1000 // 1))))


def resolve_signing_key(explicit: bytes | str | None, serializer: Serializer) -> bytes | None:
    """The key entries are signed with: the argument, the serializer's, or the environment's."""
    key: bytes | str | None = explicit
    setting = "signing_key"
    if key is None:
        key = getattr(serializer, "signing_key", None)
    if key is None:
        key, setting = env_str(ENV_SIGNING_KEY), ENV_SIGNING_KEY
    if key is None:
        return None
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if len(raw) < 16:
        raise ConfigurationError(f"{setting} must be at least 16 bytes long, got {len(raw)}")
    return raw


class Codec:
    """Wraps values in the envelope with one serializer (and key, and size limit).

    Args:
        serializer: default :class:`~stratacache.serialization.JsonSerializer`.
        signing_key: sign and verify every entry (default: the serializer's key,
            else ``STRATACACHE_SIGNING_KEY``, else unsigned).
        max_bytes: largest serialized value written, and largest payload
            decompressed on reads (default 32 MiB).

    Example:
        >>> codec = Codec()
        >>> blob = codec.wrap("k", codec.payload([1, 2]), version=b"12345678", generation=0,
        ...                   expires_at=None, keep_until=None)
        >>> codec.decode("k", blob).value
        [1, 2]
    """

    def __init__(
        self,
        serializer: Serializer | None = None,
        *,
        signing_key: bytes | str | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.serializer: Serializer = serializer if serializer is not None else JsonSerializer()
        self.key = resolve_signing_key(signing_key, self.serializer)
        self.max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        self.overhead = HEADER_SIZE + (MAC_SIZE if self.key is not None else 0)
        self._serializer_id = self.serializer.id
        self._loads = self.serializer.loads
        """Bytes the envelope adds to a payload (the header, and the signature if any)."""

    # ------------------------------------------------------------ writing

    def payload(self, value: object) -> Payload:
        """Serialize (and maybe compress) once; wrap the result per tier with :meth:`wrap`."""
        try:
            data = self.serializer.dumps(value)
        except SerializationError:
            raise
        except Exception as exc:
            # A str with a lone surrogate, an int past Python's digit limit, or a custom
            # serializer's own error: the value stays uncached, the caller still gets it.
            raise SerializationError(
                f"cannot serialize a {type(value).__qualname__}: {type(exc).__name__}: {exc}"
            ) from exc
        if len(data) > self.max_bytes:
            raise OversizeError(
                f"the serialized value has {len(data)} bytes, over the limit of {self.max_bytes}"
            )
        flags = self.serializer.id
        if len(data) >= COMPRESS_MIN_BYTES:
            packed = zlib.compress(data, 6)
            if len(packed) < len(data):
                return Payload(flags | _COMPRESSED, packed)
        return Payload(flags, data)

    def _seal(self, full_key: str, header: bytes, data: bytes) -> bytes:
        if self.key is None:
            return header + data
        return header + self._mac(full_key, header, data) + data

    def _mac(self, full_key: str, header: bytes, data: bytes) -> bytes:
        import hashlib
        import hmac

        assert self.key is not None
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        name = full_key.encode("utf-8", "surrogatepass")
        mac.update(len(name).to_bytes(4, "big") + name)
        mac.update(header)
        mac.update(data)
        return mac.digest()

    def _header(
        self,
        flags: int,
        version: bytes,
        generation: int,
        expires_at: float | None,
        keep_until: float | None,
        stale_at: float | None,
        delta: float,
    ) -> bytes:
        if self.key is not None:
            flags |= _SIGNED
        keep = (
            keep_until if keep_until is None or expires_at is None else max(keep_until, expires_at)
        )
        delta_ms = min(max(0, round(delta * 1000)), 0xFFFFFFFF)
        return _HEADER.pack(
            _MAGIC,
            FORMAT,
            flags,
            version,
            min(generation, 2**64 - 1),
            _ms(expires_at),
            _ms(keep),
            _ms(stale_at),
            delta_ms,
        )

    def wrap(
        self,
        full_key: str,
        payload: Payload,
        *,
        version: bytes,
        generation: int,
        expires_at: float | None,
        keep_until: float | None,
        stale_at: float | None = None,
        delta: float = 0.0,
    ) -> bytes:
        """The stored bytes of a value under ``full_key``."""
        header = self._header(
            payload.flags, version, generation, expires_at, keep_until, stale_at, delta
        )
        return self._seal(full_key, header, payload.data)

    def tombstone(self, full_key: str, version: bytes, generation: int, until: float) -> bytes:
        """What an invalidation leaves: refuses fills that started before it, until ``until``."""
        header = self._header(
            _TOMBSTONE | self.serializer.id, version, generation, until, until, None, 0.0
        )
        return self._seal(full_key, header, b"")

    def lease(self, full_key: str, token: bytes, until: float, keep_until: float) -> bytes:
        """A fill in progress: its holder's token, good until ``until``."""
        header = self._header(_LEASE | self.serializer.id, token, 0, until, keep_until, None, 0.0)
        return self._seal(full_key, header, b"")

    def rewrap(self, full_key: str, record: Record, blob: bytes, expires_at: float | None) -> bytes:
        """``blob`` (already decoded as ``record``) with another expiry, for promotion."""
        flags = blob[3] & ~_SIGNED
        start = HEADER_SIZE + (MAC_SIZE if blob[3] & _SIGNED else 0)
        header = self._header(
            flags,
            record.version,
            record.generation,
            expires_at,
            None,
            record.stale_at,
            record.delta,
        )
        return self._seal(full_key, header, bytes(blob[start:]))

    # ------------------------------------------------------------ reading

    def decode(self, full_key: str, blob: object) -> Record:
        """Parse and verify a stored record; :class:`SerializationError` for anything foreign."""
        if type(blob) is not bytes:
            if not isinstance(blob, bytearray | memoryview):
                raise SerializationError(f"stored value is {type(blob).__name__}, not bytes")
            blob = bytes(blob)
        if len(blob) < HEADER_SIZE:
            raise SerializationError("stored value is too short to be an envelope")
        magic, fmt, flags, version, generation, expires, keep, stale, delta = _HEADER.unpack_from(
            blob
        )
        if magic != _MAGIC or fmt != FORMAT:
            raise SerializationError(f"unknown envelope format (magic={magic!r}, format={fmt})")
        start = HEADER_SIZE
        if self.key is not None:
            if not flags & _SIGNED or len(blob) < HEADER_SIZE + MAC_SIZE:
                raise SerializationError("entry is not signed; this cache signs every entry")
            import hmac

            mac = blob[HEADER_SIZE : HEADER_SIZE + MAC_SIZE]
            start += MAC_SIZE
            if not hmac.compare_digest(mac, self._mac(full_key, blob[:HEADER_SIZE], blob[start:])):
                raise SerializationError("entry signature does not match its key and contents")
        elif flags & _SIGNED:
            start += MAC_SIZE
        if flags & _SERIALIZER != self._serializer_id:
            raise SerializationError(
                f"entry was written by serializer {flags & _SERIALIZER}, "
                f"this cache reads serializer {self._serializer_id}"
            )
        kind = VALUE
        value: object = None
        if flags & _TOMBSTONE:
            kind = TOMBSTONE
        elif flags & _LEASE:
            kind = LEASE
        else:
            data = blob[start:]
            try:
                if flags & _COMPRESSED:
                    data = self._inflate(data)
                value = self._loads(data)
            except SerializationError:
                raise
            except Exception as exc:
                raise SerializationError(f"cannot decode stored value: {exc}") from exc
        return _record(
            (
                kind,
                value,
                version,
                generation,
                expires / 1000 if expires else None,
                keep / 1000 if keep else None,
                stale / 1000 if stale else None,
                delta / 1000,
            )
        )

    def _inflate(self, data: bytes) -> bytes:
        # In steps: an entry that inflates past the limit is refused holding at most the
        # limit in memory (one call with max_length would hold twice that while joining).
        inflater = zlib.decompressobj()
        parts: list[bytes] = []
        size = 0
        while not inflater.eof:
            part = inflater.decompress(data, _INFLATE_STEP)
            data = inflater.unconsumed_tail
            if not part and not data:
                raise SerializationError("compressed entry is truncated")
            size += len(part)
            if size > self.max_bytes:
                raise SerializationError(
                    f"compressed entry inflates past the limit of {self.max_bytes} bytes; refused"
                )
            parts.append(part)
        return b"".join(parts)


def version_of(blob: bytes) -> bytes:
    """The version bytes of a stored record (what conditional writes compare)."""
    return bytes(blob[VERSION_OFFSET : VERSION_OFFSET + VERSION_SIZE])
