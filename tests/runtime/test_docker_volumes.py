"""Named volumes on the real engine: labelled, found by label, mounted, kept and removed as
the provisioner and the agent rely on."""

from __future__ import annotations

from agent.runtime import RuntimeFailure, VolumeMount
from tests.runtime.conftest import Engine


async def test_a_volume_is_created_labelled_found_by_label_and_created_again_as_it_is(
        engine: Engine) -> None:
    name = f"{engine.instance}-pvc-1"
    made = await engine.runtime.create_volume(name, labels={**engine.selector,
                                                            "minik.dev/pv": "pvc-1"})
    assert made.name == name and made.labels["minik.dev/pv"] == "pvc-1"
    assert made.mountpoint.endswith(f"/{name}/_data")
    again = await engine.runtime.create_volume(name, labels={**engine.selector,
                                                             "minik.dev/pv": "pvc-1"})
    assert again == made
    found = await engine.runtime.list_volumes({**engine.selector, "minik.dev/pv": "pvc-1"})
    assert [v.name for v in found] == [name]
    assert await engine.runtime.list_volumes({**engine.selector, "minik.dev/pv": "other"}) == []
    assert await engine.runtime.volume(name) == made
    assert await engine.runtime.volume(f"{engine.instance}-absent") is None


async def test_data_written_through_one_container_is_read_through_the_next(
        engine: Engine) -> None:
    name = f"{engine.instance}-data"
    await engine.runtime.create_volume(name, labels=engine.selector)
    writer = await engine.run("writer", command=["sh", "-c", "echo kept > /data/file"],
                              mounts=[VolumeMount(name, "/data")])
    await engine.runtime.stop(writer, timeout=5)
    await engine.runtime.remove(writer)
    reader = await engine.run("reader", command=["sleep", "60"],
                              mounts=[VolumeMount(name, "/data", read_only=True)])
    result = await engine.runtime.exec_run(reader, ["cat", "/data/file"], timeout=10)
    assert (result.exit_code, result.output) == (0, b"kept\n")
    refused = await engine.runtime.exec_run(reader, ["touch", "/data/other"], timeout=10)
    assert refused.exit_code != 0


async def test_a_new_volume_stays_empty_whatever_the_image_holds_at_the_mount_path(
        engine: Engine) -> None:
    name = f"{engine.instance}-empty"
    await engine.runtime.create_volume(name, labels=engine.selector)
    container = await engine.run("c", command=["sleep", "60"],
                                 mounts=[VolumeMount(name, "/etc")])
    listing = await engine.runtime.exec_run(container, ["ls", "-A", "/etc"], timeout=10)
    assert b"passwd" not in listing.output.split()  # the engine's own files (hosts...) only


async def test_a_volume_in_use_is_not_removed_and_an_absent_one_is_fine(engine: Engine) -> None:
    name = f"{engine.instance}-busy"
    await engine.runtime.create_volume(name, labels=engine.selector)
    container = await engine.run("c", command=["sleep", "60"], mounts=[VolumeMount(name, "/d")])
    try:
        await engine.runtime.remove_volume(name)
    except RuntimeFailure as e:
        assert "in use" in str(e)
    else:
        raise AssertionError("a volume in use was removed")
    await engine.runtime.remove(container, force=True)
    await engine.runtime.remove_volume(name)
    assert await engine.runtime.volume(name) is None
    await engine.runtime.remove_volume(name)
