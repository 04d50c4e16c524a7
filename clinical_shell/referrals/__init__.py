"""Two-way referral, transfer-out approval, teleconsultation and MDT across the network."""
