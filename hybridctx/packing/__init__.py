"""Stage 3, packing: scored spans → the context a model reads, within an exact token budget.

The packer, exact token counting in the reader's tokenizer, and packing of pieces retrieved by
other libraries (the framework-free core of the LangChain and LlamaIndex plug-ins).
"""
