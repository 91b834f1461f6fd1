"""The People and routing page (/people/): reps' availability, capacity, load and working hours;
the routing rules with their pools; the "which rule and rep would this lead get?" tester."""
