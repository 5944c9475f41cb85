"""`kubectl mathtune`: the terminal front end of MathFinetune runs (a kubectl plugin)."""
