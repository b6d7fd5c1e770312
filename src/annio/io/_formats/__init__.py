"""Formats data arrives in, next to h5ad/zarr: text (csv/tsv), Excel, plain HDF5, Matrix
Market, loom, umi_tools counts and the 10x Genomics outputs. One module per format family;
each builds an in-memory :class:`annio.AnnData`."""
