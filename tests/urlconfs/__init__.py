"""URLconfs of projects wired in other ways than ours, for system check W030."""
