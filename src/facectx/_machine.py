"""Which OS errors are the machine's (disk, permissions, mounts, memory), not an input's.

A folder job skips an item for the item's own fault and goes on; for the machine's it must stop,
since a skip is remembered and a rerun after the fix would never redo the item. Reading a photo
(``facectx.faces.io``) and the folder jobs (``facectx._jobrecord.is_environmental``) share this
one list.
"""

from __future__ import annotations

import errno

MACHINE_ERRNOS = frozenset(
    {
        errno.ENOSPC,  # disk full
        errno.EDQUOT,  # quota exceeded
        errno.EROFS,  # read-only file system
        errno.EIO,  # device error
        errno.EACCES,  # permission denied
        errno.EPERM,
        errno.ENOMEM,
        errno.ENXIO,  # the device or mount behind the path is gone
        errno.ENODEV,
        errno.ESTALE,  # NFS handle of a remounted or vanished export
        errno.ENOTCONN,  # FUSE mount whose daemon died
        errno.ETIMEDOUT,  # network file system not answering
        errno.EMFILE,  # too many open files (process, then system)
        errno.ENFILE,
    }
)


def machine_oserror(e: BaseException) -> OSError | None:
    """The machine's OSError behind ``e``: ``e`` itself, or what it was raised from or while
    handling (libraries such as Pillow re-raise an ``open``'s error as their own); else None."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, OSError) and cur.errno in MACHINE_ERRNOS:
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None
