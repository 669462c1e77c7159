"""aneurysm: intracranial aneurysm detection and localisation on cerebral angiography.

Data flows one way: adapter -> schema records -> cached arrays -> model -> predictions -> report.
"""

__version__ = "0.1.0"
