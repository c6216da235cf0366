"""Safe-completion SFT data pipeline: seeds -> expansion -> teacher sampling -> policy check -> selection -> Parquet."""

__version__ = "0.1.0"
