"""`python -m evals.humaneval --workdir=RUN --config=configs/mbpp.py[:variant] ...`: pass@k on HumanEval
(see evals/cli.py)."""
if __name__ == "__main__":
    from evals import cli

    cli.main("humaneval")
