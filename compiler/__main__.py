from compiler.cli import cli

cli(prog_name="nanotasks")
