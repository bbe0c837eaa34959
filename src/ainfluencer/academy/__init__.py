"""Academy: courses, lessons and quizzes about running a virtual character well, inside the product.

Kept light on purpose: ``db.models`` imports ``academy.models`` to register the tables, so this package must not
import the routers (they import the app's dependencies).
"""
