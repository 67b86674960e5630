from dqmon.cli import main

main()
