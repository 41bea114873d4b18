"""Changing the members of a zip archive (npz, torch.save, .keras) for a test: one way for all."""
import copy
import zipfile


def rewrite_members(src, dst, change):
    """A copy of the archive src written to dst (a path or a binary file), every member passed
    through change(name, data) → (name, data), or None to leave it out; each member keeps its
    compression and date."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            changed = change(info.filename, zin.read(info))
            if changed is None:
                continue
            item = copy.copy(info)
            item.filename = changed[0]
            zout.writestr(item, changed[1])
    return dst


def replace_member(suffix, data):
    """A change for rewrite_members: the member whose name ends with suffix holds data."""
    return lambda name, old: (name, data if name.endswith(suffix) else old)
