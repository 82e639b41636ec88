* Whole batches of two products on two machines (integer optimum 20, LP relaxation 21).
NAME          PRODUCTION
OBJSENSE
    MAX
ROWS
 N  profit
 L  m1
 L  m2
COLUMNS
    MARKER                 'MARKER'                 'INTORG'
    p1        profit    5.0          m1        6.0
    p1        m2        1.0
    p2        profit    4.0          m1        4.0
    p2        m2        2.0
    MARKER                 'MARKER'                 'INTEND'
RHS
    RHS       m1        24.0         m2        6.0
BOUNDS
 LO BND       p1        0
 LO BND       p2        0
ENDATA
