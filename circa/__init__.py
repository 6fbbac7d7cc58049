"""circa: FPGA accelerator generator for compressed neural networks."""
