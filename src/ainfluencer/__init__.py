"""AInfluencer: a self-hosted studio for openly virtual influencer characters."""

__version__ = "0.1.0"

# Every log record of the process (ours and third-party libraries') is redacted where it is created.
from ainfluencer.logging_setup import install_record_redaction as _install_record_redaction  # noqa: E402

_install_record_redaction()
