"""keras_priors.metrics"""
