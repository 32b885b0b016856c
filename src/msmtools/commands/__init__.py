"""One module per subcommand; each defines `register(app)` and keeps heavy imports inside functions."""
