"""AInfluencer: a self-hosted studio for openly virtual influencer characters."""

__version__ = "0.1.0"
