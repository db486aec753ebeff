"""From-scratch recurrent models (no autograd): cells, the shared classifier, optimizers, backends."""
