from dqmon.cli import console

console()
