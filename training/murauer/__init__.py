"""MURAUER (Poier et al., WACV 2019): a pose network on synthetic data whose real-data features are mapped onto
the synthetic ones, with view prediction and latent adversarial alignment."""
