"""The scenario catalog: browsing with sorts, a learner's saves, ratings and
notes, and the coaches' authoring of their org's scenarios."""
