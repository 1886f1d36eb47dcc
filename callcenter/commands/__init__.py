"""The `callcenter` command's groups, one module each; `callcenter.cli` assembles them."""
