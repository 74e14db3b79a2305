from jmigrate.cli.app import run

run()
