"""Matrix calculus (`jaxls.calculus`): conventions, differentials, a catalogue of closed
forms, a checker of hand-derived gradients and gradients derived as formulas from code."""
