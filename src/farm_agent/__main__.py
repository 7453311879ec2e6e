import sys

from farm_agent.main import main

sys.exit(main())
