"""The synthetic company behind `meterflow generate`: network, customers, readings, bills, payments.

`etl.generate.generate` is the entry point; the modules here each build one part of the company.
"""
