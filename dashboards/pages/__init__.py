"""One module per page; ``panel serve`` names each page after its file."""
