"""Both readers of a .keras archive (the Dense reader and the Conv reader every command tries
first) go through one opening: an encrypted member, a member count no model has, a member
zipfile cannot inflate are one line and exit 3, never an internal error."""
import struct
import zipfile

import pytest

from cli_errors import one_error, run
from scan2conv.formats.weightfile import MAX_ARRAYS


def archive(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def encrypted(path, name):
    """The archive with the central directory marking member `name` encrypted (flag bit 0)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        size, extra, comment = struct.unpack_from("<HHH", data, at + 28)
        if data[at + 46:at + 46 + size] == name.encode():
            data[at + 8] |= 1
        at = data.find(b"PK\x01\x02", at + 46 + size + extra + comment)
    path.write_bytes(bytes(data))
    return path


MEMBERS = [("metadata.json", b"{}"), ("config.json", b'{"class_name": "Sequential"}'),
           ("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))]


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
@pytest.mark.parametrize("command", [["inspect"], ["verify"], ["unroll", "-o", "mlp.npz"]],
                         ids=["inspect", "verify", "unroll"])
def test_an_encrypted_member_is_refused(tmp_path, member, command):
    path = encrypted(archive(tmp_path / "m.keras", MEMBERS), member)
    with zipfile.ZipFile(path) as zf:         # the damage is what zipfile sees
        assert zf.getinfo(member).flag_bits & 1
    line = one_error(run(command[0], path, *[tmp_path / a if a.endswith(".npz") else a
                                               for a in command[1:]]), 3)
    assert "m.keras" in line and "encrypted" in line
    assert not (tmp_path / "mlp.npz").exists()


def test_a_keras_archive_listing_more_members_than_any_model_is_refused(tmp_path):
    path = archive(tmp_path / "many.keras", MEMBERS + [(f"assets/{i}", b"") for i in range(MAX_ARRAYS)])
    line = one_error(run("inspect", path), 3)
    assert "members" in line and f"{MAX_ARRAYS:,}" in line
