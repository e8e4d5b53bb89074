"""The knowledge base: return policy, product care, delivery, warranty and service, in Chinese."""
