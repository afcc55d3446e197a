"""Kernel isolation layers for the code sandbox (namespaces, landlock, seccomp, process cleanup).

Standard library only, with relative imports between siblings: the sandbox bootstrap loads
this folder as a stand-alone package, so nothing here may import `evals` or `hrm_jax`.
"""
