"""`python -m evals.mbpp --workdir=RUN --config=configs/mbpp.py[:variant] ...`: pass@k on MBPP (see evals/cli.py)."""
if __name__ == "__main__":
    from evals import cli

    cli.main("mbpp")
