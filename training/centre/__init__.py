"""The learned centre refiner: from a crop around the localiser's rough hand centre to the palm centre."""
