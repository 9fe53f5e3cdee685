"""What goes wrong with a pod's volumes, in the words the pod worker reports."""

from __future__ import annotations

FAILED_MOUNT = "FailedMount"
CONFIG_ERROR = "CreateContainerConfigError"


class VolumeError(Exception):
    """A volume cannot be set up (`FailedMount`) or mounted as asked.

    `reason` is `FailedMount` or `CreateContainerConfigError`, as the pod
    worker reports it; `message` is for the user.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def setup_failed(name: str, why: str) -> VolumeError:
    return VolumeError(FAILED_MOUNT, f'MountVolume.SetUp failed for volume "{name}" : {why}')


def refusal(what: str) -> str:
    return f"mounting {what} requires a privileged container"
