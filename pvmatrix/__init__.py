"""pvmatrix: which kernel both drives my hardware and runs under Xen?

Pipeline: sources -> configure -> build -> analyze -> boot -> record -> report.
"""

__version__ = "0.1.0"
