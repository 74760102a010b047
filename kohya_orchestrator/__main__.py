"""`python -m kohya_orchestrator`: the same as the `kohya-orch` command."""

from kohya_orchestrator._entry import main

if __name__ == "__main__":
    main()
