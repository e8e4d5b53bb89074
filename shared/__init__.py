"""Code both the server and the phone app import: wire structs, enums, ids."""
